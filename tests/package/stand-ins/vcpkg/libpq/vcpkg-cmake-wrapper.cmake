# Stand-in for the real port's wrapper: vcpkg's toolchain runs this for
# find_package(PostgreSQL); CMake's FindPostgreSQL defines PostgreSQL::PostgreSQL.
_find_package(${ARGS})
if(PostgreSQL_FOUND AND NOT TARGET PostgreSQL::PostgreSQL)
  set(PostgreSQL_FOUND FALSE)
endif()
