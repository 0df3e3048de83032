# settle is header-only: one configuration, nothing compiled.
set(VCPKG_BUILD_TYPE release)

# The source. Used as an overlay port from a clone, the port builds the tree it
# lies in (packaging/vcpkg/ports/settle -> the repository root). In the public
# registry this line is replaced by the release archive (docs/install.md):
#   vcpkg_from_github(
#       OUT_SOURCE_PATH SOURCE_PATH
#       REPO <owner>/settle
#       REF "v${VERSION}"
#       SHA512 <SHA-512 of that archive>
#       HEAD_REF main
#   )
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../../.." ABSOLUTE)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DSETTLE_INSTALL=ON
        -DSETTLE_BUILD_TESTS=OFF
        -DSETTLE_BUILD_BENCHMARKS=OFF
        -DSETTLE_BUILD_EXAMPLES=OFF
        -DSETTLE_BUILD_FUZZERS=OFF
)
vcpkg_cmake_install()

# settle installs its CMake package under share/cmake/settle; vcpkg wants share/settle.
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/settle)

# A backend's pkg-config file requires its client library (sqlite3, libpq,
# libmariadb, hiredis), which only the matching feature installs; without it
# the file would not resolve.
foreach(backend IN ITEMS sqlite postgres mysql redis)
    if(NOT backend IN_LIST FEATURES)
        file(REMOVE "${CURRENT_PACKAGES_DIR}/share/pkgconfig/settle-${backend}.pc")
    endif()
endforeach()
vcpkg_fixup_pkgconfig()

# The license goes to share/settle/copyright instead of share/doc.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc" "${CURRENT_PACKAGES_DIR}/lib")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
