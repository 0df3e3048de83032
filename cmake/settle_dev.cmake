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

# A throwaway PostgreSQL server for the tests and benchmarks that need one,
# started and stopped by CTest itself: the fixture `postgres` runs
# scripts/postgres.sh start before the first test that requires it and stop
# after the last, even when tests fail. It listens only on a Unix socket in
# a directory of its own, named after this build tree, so builds never share
# a server. settle_require_postgres(<test>...) makes tests use it: they get
# the conninfo in SETTLE_POSTGRES and the server directory in
# SETTLE_POSTGRES_DIR (the fault tests restart the server through it).
string(MD5 _settle_build_hash "${PROJECT_BINARY_DIR}")
string(SUBSTRING "${_settle_build_hash}" 0 12 _settle_build_hash)
set(SETTLE_POSTGRES_DIR "/tmp/settle-postgres-${_settle_build_hash}")
set(SETTLE_POSTGRES_CONNINFO "host=${SETTLE_POSTGRES_DIR} user=settle dbname=postgres")
set(SETTLE_POSTGRES_SCRIPT "${PROJECT_SOURCE_DIR}/scripts/postgres.sh")

function(settle_require_postgres)
  get_property(defined GLOBAL PROPERTY SETTLE_POSTGRES_FIXTURE)
  if(NOT defined)
    set_property(GLOBAL PROPERTY SETTLE_POSTGRES_FIXTURE TRUE)
    add_test(NAME postgres.server.start COMMAND "${SETTLE_POSTGRES_SCRIPT}" start "${SETTLE_POSTGRES_DIR}")
    add_test(NAME postgres.server.stop COMMAND "${SETTLE_POSTGRES_SCRIPT}" stop "${SETTLE_POSTGRES_DIR}")
    set_tests_properties(postgres.server.start PROPERTIES FIXTURES_SETUP postgres LABELS postgres)
    set_tests_properties(postgres.server.stop PROPERTIES FIXTURES_CLEANUP postgres LABELS postgres)
    add_test(NAME postgres.server.fresh_start
             COMMAND "${PROJECT_SOURCE_DIR}/tests/postgres/fresh_start.sh" "${SETTLE_POSTGRES_SCRIPT}")
    set_tests_properties(postgres.server.fresh_start PROPERTIES LABELS postgres)
  endif()
  if(ARGN)
    set_tests_properties(${ARGN} PROPERTIES FIXTURES_REQUIRED postgres ENVIRONMENT
                         "SETTLE_POSTGRES=${SETTLE_POSTGRES_CONNINFO};SETTLE_POSTGRES_DIR=${SETTLE_POSTGRES_DIR};SETTLE_POSTGRES_SCRIPT=${SETTLE_POSTGRES_SCRIPT}")
  endif()
endfunction()

# A throwaway Redis server, the same way: the fixture `redis` runs
# scripts/redis.sh start before the first test that requires it and stop
# after the last, even when tests fail. It listens only on a Unix socket in a
# directory of its own, named after this build tree. Tests get the socket's
# path in SETTLE_REDIS, the server directory in SETTLE_REDIS_DIR and the
# script in SETTLE_REDIS_SCRIPT (the broker tests restart the server).
# settle_require_redis(<test>...) makes other tests (benchmarks) use it.
set(SETTLE_REDIS_DIR "/tmp/settle-redis-${_settle_build_hash}")
set(SETTLE_REDIS_SOCKET "${SETTLE_REDIS_DIR}/redis.sock")
set(SETTLE_REDIS_SCRIPT "${PROJECT_SOURCE_DIR}/scripts/redis.sh")

function(settle_require_redis)
  get_property(defined GLOBAL PROPERTY SETTLE_REDIS_FIXTURE)
  if(NOT defined)
    set_property(GLOBAL PROPERTY SETTLE_REDIS_FIXTURE TRUE)
    add_test(NAME redis.server.start COMMAND "${SETTLE_REDIS_SCRIPT}" start "${SETTLE_REDIS_DIR}")
    add_test(NAME redis.server.stop COMMAND "${SETTLE_REDIS_SCRIPT}" stop "${SETTLE_REDIS_DIR}")
    set_tests_properties(redis.server.start PROPERTIES FIXTURES_SETUP redis LABELS redis)
    set_tests_properties(redis.server.stop PROPERTIES FIXTURES_CLEANUP redis LABELS redis)
  endif()
  if(ARGN)
    set_tests_properties(${ARGN} PROPERTIES FIXTURES_REQUIRED redis ENVIRONMENT
                         "SETTLE_REDIS=${SETTLE_REDIS_SOCKET};SETTLE_REDIS_DIR=${SETTLE_REDIS_DIR};SETTLE_REDIS_SCRIPT=${SETTLE_REDIS_SCRIPT}")
  endif()
endfunction()

# The same for MariaDB: the fixture `mysql` runs scripts/mariadb.sh start
# before the first test that requires it and stop after the last. Tests get
# the connection settings in SETTLE_MYSQL ("socket=... user=... database=..."),
# the server directory in SETTLE_MYSQL_DIR and the script in
# SETTLE_MYSQL_SCRIPT (the fault tests restart the server through it).
set(SETTLE_MYSQL_DIR "/tmp/settle-mariadb-${_settle_build_hash}")
set(SETTLE_MYSQL_CONNINFO "socket=${SETTLE_MYSQL_DIR}/mysqld.sock user=settle database=settle")
set(SETTLE_MYSQL_SCRIPT "${PROJECT_SOURCE_DIR}/scripts/mariadb.sh")

function(settle_require_mysql)
  get_property(defined GLOBAL PROPERTY SETTLE_MYSQL_FIXTURE)
  if(NOT defined)
    set_property(GLOBAL PROPERTY SETTLE_MYSQL_FIXTURE TRUE)
    add_test(NAME mysql.server.start COMMAND "${SETTLE_MYSQL_SCRIPT}" start "${SETTLE_MYSQL_DIR}")
    add_test(NAME mysql.server.stop COMMAND "${SETTLE_MYSQL_SCRIPT}" stop "${SETTLE_MYSQL_DIR}")
    set_tests_properties(mysql.server.start PROPERTIES FIXTURES_SETUP mysql LABELS mysql)
    set_tests_properties(mysql.server.stop PROPERTIES FIXTURES_CLEANUP mysql LABELS mysql)
  endif()
  if(ARGN)
    set_tests_properties(${ARGN} PROPERTIES FIXTURES_REQUIRED mysql ENVIRONMENT
                         "SETTLE_MYSQL=${SETTLE_MYSQL_CONNINFO};SETTLE_MYSQL_DIR=${SETTLE_MYSQL_DIR};SETTLE_MYSQL_SCRIPT=${SETTLE_MYSQL_SCRIPT}")
  endif()
endfunction()
