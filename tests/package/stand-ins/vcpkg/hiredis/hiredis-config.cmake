# Stand-in for the real port's config: the system hiredis as hiredis::hiredis.
if(NOT TARGET hiredis::hiredis)
  find_path(_settle_standin_hiredis_include hiredis/hiredis.h)
  find_library(_settle_standin_hiredis_library hiredis)
  if(NOT _settle_standin_hiredis_include OR NOT _settle_standin_hiredis_library)
    set(hiredis_FOUND FALSE)
    set(hiredis_NOT_FOUND_MESSAGE "the hiredis stand-in needs the system's hiredis (libhiredis-dev)")
    return()
  endif()
  add_library(hiredis::hiredis UNKNOWN IMPORTED)
  set_target_properties(hiredis::hiredis PROPERTIES
    IMPORTED_LOCATION "${_settle_standin_hiredis_library}"
    INTERFACE_INCLUDE_DIRECTORIES "${_settle_standin_hiredis_include}")
endif()
