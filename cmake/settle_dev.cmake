# What settle's own tests, benchmarks and examples build with. Nothing here
# reaches a consumer: the settle target itself carries no flags.

# settle::dev: the library plus our warnings. The presets and CI make them
# errors; a plain build only shows them, so a newer compiler's new warning (or
# an optimiser's false positive) never stops someone who only builds.
option(SETTLE_WARNINGS_AS_ERRORS "Treat warnings in settle's own targets as errors" OFF)
add_library(settle_dev INTERFACE)
add_library(settle::dev ALIAS settle_dev)
target_link_libraries(settle_dev INTERFACE settle::settle)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(settle_dev INTERFACE -Wall -Wextra -Wpedantic -Wconversion -Wshadow
                                              $<$<BOOL:${SETTLE_WARNINGS_AS_ERRORS}>:-Werror>)
elseif(MSVC)
  target_compile_options(settle_dev INTERFACE /W4 /permissive-
                                              $<$<BOOL:${SETTLE_WARNINGS_AS_ERRORS}>:/WX>)
endif()

# settle_find_package(<package> [<find_package arguments>...] NEEDED_BY <what>
#                     DEBIAN <Debian package> SWITCH <option>)
# find_package for what settle's own tests, benchmarks and examples use. When
# the package is missing, the configure stops saying which Debian package has
# it and which switch builds settle without the part that needs it.
macro(settle_find_package _settle_name)
  cmake_parse_arguments(_settle_find "" "NEEDED_BY;DEBIAN;SWITCH" "" ${ARGN})
  find_package(${_settle_name} ${_settle_find_UNPARSED_ARGUMENTS} QUIET)
  if(NOT ${_settle_name}_FOUND)
    message(FATAL_ERROR
      "${_settle_find_NEEDED_BY} need ${_settle_name}, which find_package did not find.\n"
      "On Debian or Ubuntu: sudo apt-get install ${_settle_find_DEBIAN} (scripts/deps.sh "
      "${_settle_find_DEBIAN} does it as root); elsewhere install it with your package manager, "
      "vcpkg or conan and point CMAKE_PREFIX_PATH at it.\n"
      "Or build without them: -D${_settle_find_SWITCH}=OFF")
  endif()
endmacro()

# Throwaway servers for the tests and benchmarks that need one, started and
# stopped by CTest itself: the fixture <server> runs scripts/<script> start
# before the first test that requires it and stop after the last, even when
# tests fail. Each listens only on a Unix socket in a directory of its own,
# named after this build tree, so builds never share a server.
# settle_require_server(<server> [<test>...]) makes tests use one, and a test
# may require several: each gets SETTLE_<SERVER> (how to connect),
# SETTLE_<SERVER>_DIR (the server's directory) and SETTLE_<SERVER>_SCRIPT (the
# fault tests restart the server through it). The servers:
#   postgres  scripts/postgres.sh; a libpq conninfo
#   redis     scripts/redis.sh; the socket's path
#   mysql     scripts/mariadb.sh; "socket=... user=... database=..."
string(MD5 _settle_build_hash "${PROJECT_BINARY_DIR}")
string(SUBSTRING "${_settle_build_hash}" 0 12 _settle_build_hash)
set(_settle_postgres_dir "/tmp/settle-postgres-${_settle_build_hash}")
set(_settle_redis_dir "/tmp/settle-redis-${_settle_build_hash}")
set(_settle_mysql_dir "/tmp/settle-mariadb-${_settle_build_hash}")
set(_settle_postgres_script "${PROJECT_SOURCE_DIR}/scripts/postgres.sh")
set(_settle_redis_script "${PROJECT_SOURCE_DIR}/scripts/redis.sh")
set(_settle_mysql_script "${PROJECT_SOURCE_DIR}/scripts/mariadb.sh")
set(_settle_postgres_connect "host=${_settle_postgres_dir} user=settle dbname=postgres")
set(_settle_redis_connect "${_settle_redis_dir}/redis.sock")
set(_settle_mysql_connect "socket=${_settle_mysql_dir}/mysqld.sock user=settle database=settle")

# settle_server_environment(<server> <variable>): the environment a test of
# that server runs with, as a list.
function(settle_server_environment server variable)
  string(TOUPPER "${server}" name)
  set(${variable} "SETTLE_${name}=${_settle_${server}_connect}"
                  "SETTLE_${name}_DIR=${_settle_${server}_dir}"
                  "SETTLE_${name}_SCRIPT=${_settle_${server}_script}" PARENT_SCOPE)
endfunction()

function(settle_require_server server)
  if(NOT DEFINED _settle_${server}_script)
    message(FATAL_ERROR "settle_require_server: no server named '${server}'")
  endif()
  get_property(defined GLOBAL PROPERTY SETTLE_${server}_FIXTURE)
  if(NOT defined)
    set_property(GLOBAL PROPERTY SETTLE_${server}_FIXTURE TRUE)
    set(script "${_settle_${server}_script}")
    add_test(NAME ${server}.server.start COMMAND "${script}" start "${_settle_${server}_dir}")
    add_test(NAME ${server}.server.stop COMMAND "${script}" stop "${_settle_${server}_dir}")
    set_tests_properties(${server}.server.start PROPERTIES FIXTURES_SETUP ${server} LABELS ${server})
    set_tests_properties(${server}.server.stop PROPERTIES FIXTURES_CLEANUP ${server} LABELS ${server})
    if(server STREQUAL "postgres")
      # a server left running by an interrupted run is replaced, not reused
      add_test(NAME postgres.server.fresh_start
               COMMAND "${PROJECT_SOURCE_DIR}/tests/postgres/fresh_start.sh" "${script}")
      set_tests_properties(postgres.server.fresh_start PROPERTIES LABELS postgres)
    endif()
  endif()
  settle_server_environment(${server} environment)
  foreach(test IN LISTS ARGN)
    set_property(TEST ${test} APPEND PROPERTY FIXTURES_REQUIRED ${server})
    set_property(TEST ${test} APPEND PROPERTY ENVIRONMENT ${environment})
  endforeach()
endfunction()
