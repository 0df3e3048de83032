# cmake -D GXX=<g++> -D CLANGXX=<clang++> -D INCLUDE=<dir> -D SOURCE=<instants.cpp>
#       -D WORK_DIR=<dir> -P run.cmake
# Builds SOURCE with libstdc++ (GXX) and with libc++ (CLANGXX -stdlib=libc++),
# then has each build read what the other wrote to one SQLite file.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(build name)
  execute_process(
    COMMAND ${ARGN} -std=c++20 -Wall -Wextra -Werror "-I${INCLUDE}" "${SOURCE}" -lsqlite3
            -o "${WORK_DIR}/${name}"
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "building the ${name} program failed:\n${output}")
  endif()
endfunction()

function(run program mode database)
  execute_process(
    COMMAND "${WORK_DIR}/${program}" ${mode} "${WORK_DIR}/${database}"
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${program} ${mode} ${database} failed (${result}):\n${output}")
  endif()
endfunction()

build(libstdc++ "${GXX}")
build(libc++ "${CLANGXX}" -stdlib=libc++)
foreach(pair IN ITEMS "libstdc++;libc++" "libc++;libstdc++")
  list(GET pair 0 writer)
  list(GET pair 1 reader)
  run(${writer} write "${writer}.db")
  run(${reader} read "${writer}.db")
  message(STATUS "${reader} agrees with every instant ${writer} stored")
endforeach()
