# A stand-in for vcpkg's libmariadb port, for settle's package tests where the
# registry cannot be reached. It builds nothing: like the real port it
# installs lib/pkgconfig/libmariadb.pc, here naming the system's MariaDB
# Connector/C (Debian's libmariadb-dev).
set(VCPKG_POLICY_EMPTY_INCLUDE_FOLDER enabled)
set(VCPKG_BUILD_TYPE release)

file(WRITE "${CURRENT_PACKAGES_DIR}/lib/pkgconfig/libmariadb.pc" [[
Name: libmariadb
Description: MariaDB Connector/C (test stand-in: the system library)
Version: 3.3.20
Libs: -lmariadb
Cflags: -I/usr/include/mariadb
]])
file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright"
     "Test stand-in; MariaDB Connector/C is under the LGPL 2.1.\n")
