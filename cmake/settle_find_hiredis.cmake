# Finds hiredis for settle::redis as the imported target hiredis::hiredis:
# hiredis' own CMake package where there is one (hiredis 1.0 and later, vcpkg,
# conan), else pkg-config (Debian's 0.14 has no CMake package; its
# HiredisConfig.cmake defines no target), which gets the same name. Sets
# SETTLE_HIREDIS_FOUND.
if(NOT TARGET hiredis::hiredis)
  find_package(hiredis CONFIG QUIET)
endif()
if(NOT TARGET hiredis::hiredis)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(SETTLE_HIREDIS QUIET IMPORTED_TARGET hiredis)
  endif()
  if(TARGET PkgConfig::SETTLE_HIREDIS)
    add_library(hiredis::hiredis INTERFACE IMPORTED)
    set_target_properties(hiredis::hiredis PROPERTIES INTERFACE_LINK_LIBRARIES
                                                      PkgConfig::SETTLE_HIREDIS)
  endif()
endif()
if(TARGET hiredis::hiredis)
  set(SETTLE_HIREDIS_FOUND TRUE)
else()
  set(SETTLE_HIREDIS_FOUND FALSE)
endif()
