# cmake -DVERSION=<project version> -DSOURCE_DIR=<kvstore> -P recipe-versions.cmake
# Fails unless the vcpkg port and the Conan recipe name VERSION.
file(READ "${SOURCE_DIR}/ports/kvstore/vcpkg.json" port)
string(JSON port_version GET "${port}" version-semver)
if(NOT port_version STREQUAL VERSION)
  message(FATAL_ERROR "ports/kvstore/vcpkg.json names version ${port_version}; version.hpp says ${VERSION}")
endif()
file(STRINGS "${SOURCE_DIR}/conanfile.py" conan_version REGEX "^    version = ")
string(REGEX REPLACE "^    version = \"([^\"]*)\"$" "\\1" conan_version "${conan_version}")
if(NOT conan_version STREQUAL VERSION)
  message(FATAL_ERROR "conanfile.py names version '${conan_version}'; version.hpp says ${VERSION}")
endif()
message(STATUS "vcpkg port and Conan recipe name version ${VERSION}")
