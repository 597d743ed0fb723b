import os

from conan import ConanFile
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy


class KvstoreConan(ConanFile):
    name = "kvstore"
    version = "0.1.0"
    description = ("Header-only C++17 concurrent in-memory key-value map whose acknowledged writes survive "
                   "crashes: a sharded hash map, a write-ahead log and snapshots.")
    license = "MIT"
    topics = ("key-value", "hash-map", "concurrency", "write-ahead-log", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    exports_sources = "CMakeLists.txt", "LICENSE", "cmake/*", "include/*"
    no_copy_source = True

    def requirements(self):
        self.requires("xxhash/0.8.2")

    def layout(self):
        cmake_layout(self)

    def package_id(self):
        self.info.clear()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "kvstore")
        self.cpp_info.set_property("cmake_target_name", "kvstore::kvstore")
        self.cpp_info.set_property("pkg_config_name", "kvstore")
        self.cpp_info.requires = ["xxhash::xxhash"]
        if self.settings.os in ("Linux", "FreeBSD"):
            self.cpp_info.system_libs = ["pthread"]
