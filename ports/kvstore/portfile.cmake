# An overlay port that builds kvstore from the repository it lives in:
#   vcpkg install kvstore --overlay-ports=<kvstore>/ports
# A registry port would fetch a release with vcpkg_from_github instead.
set(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../..")

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DKVSTORE_BUILD_TESTS=OFF
        -DKVSTORE_BUILD_EXAMPLES=OFF
        -DKVSTORE_BUILD_BENCHMARKS=OFF
        -DKVSTORE_INSTALL=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/kvstore)
vcpkg_fixup_pkgconfig()

# Header-only: nothing is built, so no debug tree is kept.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug")

vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
