# Stand-in for the real port's config: the system SQLite as unofficial::sqlite3::sqlite3.
if(NOT TARGET unofficial::sqlite3::sqlite3)
  find_path(_settle_standin_sqlite3_include sqlite3.h)
  find_library(_settle_standin_sqlite3_library sqlite3)
  if(NOT _settle_standin_sqlite3_include OR NOT _settle_standin_sqlite3_library)
    set(unofficial-sqlite3_FOUND FALSE)
    set(unofficial-sqlite3_NOT_FOUND_MESSAGE "the sqlite3 stand-in needs the system's SQLite (libsqlite3-dev)")
    return()
  endif()
  add_library(unofficial::sqlite3::sqlite3 UNKNOWN IMPORTED)
  set_target_properties(unofficial::sqlite3::sqlite3 PROPERTIES
    IMPORTED_LOCATION "${_settle_standin_sqlite3_library}"
    INTERFACE_INCLUDE_DIRECTORIES "${_settle_standin_sqlite3_include}")
endif()
