# cmake -D SOURCE_DIR=... -D BINARY_DIR=... -D WORK_DIR=... -D GENERATOR=... -P run.cmake
#
# Installs settle from BINARY_DIR into a fresh prefix, then builds and runs the
# consumer in consumer/ with GCC and with Clang, six ways: find_package with the
# backend components and without any, add_subdirectory, FetchContent, pkg-config and
# the single header (single_include/ alone on the include path). Also checks
# that a pkg-config file written for an absolute include directory points at it.

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    string(REPLACE ";" " " command "${ARGV}")
    message(FATAL_ERROR "failed: ${command}\n${out}")
  endif()
  set(output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
run("${CMAKE_COMMAND}" --install "${BINARY_DIR}" --prefix "${prefix}")

set(consumer "${SOURCE_DIR}/tests/package/consumer")
find_program(PKG_CONFIG NAMES pkg-config pkgconf REQUIRED)
set(ENV{PKG_CONFIG_PATH} "${prefix}/share/pkgconfig")
run("${PKG_CONFIG}" --cflags settle)
string(STRIP "${output}" cflags)
separate_arguments(cflags UNIX_COMMAND "${cflags}")
run("${PKG_CONFIG}" --cflags --libs settle-sqlite settle-postgres)
string(STRIP "${output}" sql_flags)
separate_arguments(sql_flags UNIX_COMMAND "${sql_flags}")
run("${PKG_CONFIG}" --cflags --libs settle-mysql settle-redis)
string(STRIP "${output}" mysql_redis_flags)
separate_arguments(mysql_redis_flags UNIX_COMMAND "${mysql_redis_flags}")

set(strict -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror)
foreach(compiler IN ITEMS g++ clang++)
  find_program(cxx_${compiler} NAMES ${compiler} REQUIRED)
  set(cxx "${cxx_${compiler}}")
  foreach(mode IN ITEMS find_package find_package_core add_subdirectory fetch_content)
    set(build "${WORK_DIR}/${compiler}-${mode}")
    run("${CMAKE_COMMAND}" -S "${consumer}" -B "${build}" -G "${GENERATOR}"
        "-DCMAKE_CXX_COMPILER=${cxx}" "-DCMAKE_PREFIX_PATH=${prefix}" "-DSETTLE_CONSUME=${mode}"
        "-DSETTLE_SOURCE_DIR=${SOURCE_DIR}")
    run("${CMAKE_COMMAND}" --build "${build}")
    run("${build}/consumer")
    message(STATUS "${compiler} ${mode}: ${output}")
    if(NOT mode STREQUAL "find_package_core")
      run("${build}/consumer_sql")
      message(STATUS "${compiler} ${mode}: ${output}")
      run("${build}/consumer_mysql_redis")
      message(STATUS "${compiler} ${mode}: ${output}")
    endif()
  endforeach()

  set(exe "${WORK_DIR}/${compiler}-single-header")
  run("${cxx}" -std=c++20 ${strict} "-I${SOURCE_DIR}/single_include" "${consumer}/main.cpp" -o
      "${exe}")
  run("${exe}")
  message(STATUS "${compiler} single header: ${output}")

  set(exe "${WORK_DIR}/${compiler}-pkg-config")
  run("${cxx}" -std=c++20 ${strict} ${cflags} "${consumer}/main.cpp" -o "${exe}")
  run("${exe}")
  message(STATUS "${compiler} pkg-config: ${output}")
  run("${cxx}" -std=c++20 ${strict} "${consumer}/main_sql.cpp" ${sql_flags} -o "${exe}_sql")
  run("${exe}_sql")
  message(STATUS "${compiler} pkg-config: ${output}")
  run("${cxx}" -std=c++20 ${strict} "${consumer}/main_mysql_redis.cpp" ${mysql_redis_flags} -o
      "${exe}_mysql_redis")
  run("${exe}_mysql_redis")
  message(STATUS "${compiler} pkg-config: ${output}")
endforeach()

# A distribution may install with an absolute CMAKE_INSTALL_INCLUDEDIR.
set(absolute "${WORK_DIR}/absolute")
run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${absolute}/build" -G "${GENERATOR}"
    -DSETTLE_INSTALL=ON -DSETTLE_BUILD_TESTS=OFF -DSETTLE_BUILD_BENCHMARKS=OFF
    -DSETTLE_BUILD_EXAMPLES=OFF "-DCMAKE_INSTALL_PREFIX=${absolute}/prefix"
    "-DCMAKE_INSTALL_INCLUDEDIR=${absolute}/headers")
run("${CMAKE_COMMAND}" --install "${absolute}/build")
set(ENV{PKG_CONFIG_PATH} "${absolute}/prefix/share/pkgconfig")
run("${PKG_CONFIG}" --cflags settle)
string(STRIP "${output}" cflags)
if(NOT cflags STREQUAL "-I${absolute}/headers" OR NOT EXISTS "${absolute}/headers/settle/settle.hpp")
  message(FATAL_ERROR "pkg-config with an absolute include dir gives '${cflags}'")
endif()
message(STATUS "absolute include dir: ${cflags}")
