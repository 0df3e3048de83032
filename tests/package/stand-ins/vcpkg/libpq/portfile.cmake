# A stand-in for vcpkg's libpq port, for settle's package tests where the
# registry cannot be reached. It builds nothing: like the real port it makes
# find_package(PostgreSQL) give PostgreSQL::PostgreSQL through a wrapper around
# CMake's FindPostgreSQL, here finding the system's libpq (Debian's libpq-dev),
# and it installs lib/pkgconfig/libpq.pc.
set(VCPKG_POLICY_EMPTY_INCLUDE_FOLDER enabled)
set(VCPKG_BUILD_TYPE release)

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/vcpkg-cmake-wrapper.cmake"
     DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
file(WRITE "${CURRENT_PACKAGES_DIR}/lib/pkgconfig/libpq.pc" [[
Name: libpq
Description: PostgreSQL libpq library (test stand-in: the system library)
Version: 15.18
Libs: -lpq
Cflags: -I/usr/include/postgresql
]])
file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright"
     "Test stand-in; libpq is under the PostgreSQL License.\n")
