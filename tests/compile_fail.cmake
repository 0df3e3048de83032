# cmake -D CXX=<compiler> -D INCLUDE=<dir> -D SOURCE=<file> -D CASE=<n> [-D EXPECT=<regex>] -P compile_fail.cmake
# Compiles SOURCE with -DSETTLE_CASE=CASE. Without EXPECT it must compile;
# with EXPECT it must fail, and the first error the compiler reports (with the
# notes that follow it) must match EXPECT, so the test only passes when the
# intended diagnostic is the first thing a user reads.
execute_process(
  COMMAND "${CXX}" -std=c++20 -fsyntax-only "-I${INCLUDE}" "-DSETTLE_CASE=${CASE}" "${SOURCE}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
if(NOT DEFINED EXPECT)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "case ${CASE} should compile:\n${output}")
  endif()
elseif(result EQUAL 0)
  message(FATAL_ERROR "case ${CASE} compiled; expected an error matching '${EXPECT}'")
else()
  string(FIND "${output}" "error:" start)
  string(SUBSTRING "${output}" ${start} -1 first_error)
  string(SUBSTRING "${first_error}" 6 -1 rest)
  string(FIND "${rest}" "error:" next)
  if(next GREATER -1)
    math(EXPR next "${next} + 6")
    string(SUBSTRING "${first_error}" 0 ${next} first_error)
  endif()
  if(NOT first_error MATCHES "${EXPECT}")
    message(FATAL_ERROR "case ${CASE}: the first error does not match '${EXPECT}':\n${output}")
  endif()
  message(STATUS "case ${CASE} refused as expected: ${EXPECT}")
endif()
