# A stand-in for vcpkg's hiredis port, for settle's package tests where the
# registry cannot be reached. It builds nothing: it installs the entry points
# the real port installs, resolved against the system's hiredis (Debian's
# libhiredis-dev) when a consumer configures:
#   share/hiredis/  find_package(hiredis CONFIG), target hiredis::hiredis
#   lib/pkgconfig/hiredis.pc
set(VCPKG_POLICY_EMPTY_INCLUDE_FOLDER enabled)
set(VCPKG_BUILD_TYPE release)

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/hiredis-config.cmake"
     DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
file(WRITE "${CURRENT_PACKAGES_DIR}/lib/pkgconfig/hiredis.pc" [[
Name: hiredis
Description: Minimalistic C client library for Redis (test stand-in: the system library)
Version: 0.14.1
Libs: -lhiredis
Cflags:
]])
file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright"
     "Test stand-in; hiredis is under the BSD 3-Clause License.\n")
