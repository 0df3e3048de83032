# cmake -D CLANG_FORMAT=<exe> -D SOURCE_DIR=<dir> -P check_format.cmake
# Fails, naming the files, if clang-format would change any C++ file in the tree.
file(GLOB_RECURSE files "${SOURCE_DIR}/include/*.hpp" "${SOURCE_DIR}/tests/*.hpp"
     "${SOURCE_DIR}/tests/*.cpp" "${SOURCE_DIR}/bench/*.cpp" "${SOURCE_DIR}/examples/*.cpp"
     "${SOURCE_DIR}/examples/*.hpp" "${SOURCE_DIR}/packaging/*.cpp")
list(FILTER files EXCLUDE REGEX "/build/")
execute_process(COMMAND "${CLANG_FORMAT}" --dry-run --Werror ${files} RESULT_VARIABLE result
                WORKING_DIRECTORY "${SOURCE_DIR}")
if(NOT result EQUAL 0)
  message(FATAL_ERROR "clang-format would change the files above; run scripts/format.sh")
endif()
list(LENGTH files count)
message(STATUS "clang-format leaves all ${count} files unchanged")
