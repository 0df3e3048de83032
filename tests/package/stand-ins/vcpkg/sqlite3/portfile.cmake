# A stand-in for vcpkg's sqlite3 port, for settle's package tests where the
# registry cannot be reached. It builds nothing: it installs the entry points
# the real port installs, resolved against the system's SQLite (Debian's
# libsqlite3-dev) when a consumer configures:
#   share/unofficial-sqlite3/  find_package(unofficial-sqlite3 CONFIG), target unofficial::sqlite3::sqlite3
#   share/sqlite3/vcpkg-cmake-wrapper.cmake  find_package(SQLite3) -> SQLite::SQLite3 on that target
#   lib/pkgconfig/sqlite3.pc
set(VCPKG_POLICY_EMPTY_INCLUDE_FOLDER enabled)
set(VCPKG_BUILD_TYPE release)

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/unofficial-sqlite3-config.cmake"
     DESTINATION "${CURRENT_PACKAGES_DIR}/share/unofficial-sqlite3")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/vcpkg-cmake-wrapper.cmake"
     DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
file(WRITE "${CURRENT_PACKAGES_DIR}/lib/pkgconfig/sqlite3.pc" [[
Name: SQLite
Description: SQL database engine (test stand-in: the system library)
Version: 3.40.1
Libs: -lsqlite3
Cflags:
]])
file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright"
     "Test stand-in; SQLite itself is in the public domain.\n")
