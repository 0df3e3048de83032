# vcpkg's x64-linux triplet, plus one line for offline package tests: after a
# port installs, vcpkg runs patchelf (>= 0.19, downloaded) over every file
# without a known extension, such as settle's `usage`. settle installs no ELF
# file, and patchelf cannot be downloaded here, so that pass is skipped.
set(VCPKG_TARGET_ARCHITECTURE x64)
set(VCPKG_CRT_LINKAGE dynamic)
set(VCPKG_LIBRARY_LINKAGE static)

set(VCPKG_CMAKE_SYSTEM_NAME Linux)

set(VCPKG_FIXUP_ELF_RPATH OFF)
