# A stand-in for conan-center's hiredis recipe, for settle's package tests
# where no remote can be reached: the system's hiredis (Debian's
# libhiredis-dev) under the names the real recipe gives, find_package(hiredis),
# target hiredis::hiredis (component hiredislib), pkg-config hiredis. Its
# headers are copied into the package; the library is the system's.
import os
import re

from conan import ConanFile
from conan.tools.files import copy, load

SYSTEM_INCLUDE = "/usr/include"


class HiredisStandIn(ConanFile):
    name = "hiredis"
    package_type = "shared-library"
    settings = "os", "arch", "compiler", "build_type"

    def set_version(self):
        header = load(self, os.path.join(SYSTEM_INCLUDE, "hiredis", "hiredis.h"))
        self.version = ".".join(re.search(rf"#define HIREDIS_{part} (\d+)", header).group(1)
                                for part in ("MAJOR", "MINOR", "PATCH"))

    def package(self):
        copy(self, "*.h", os.path.join(SYSTEM_INCLUDE, "hiredis"),
             os.path.join(self.package_folder, "include", "hiredis"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "hiredis")
        lib = self.cpp_info.components["hiredislib"]
        lib.set_property("cmake_target_name", "hiredis::hiredis")
        lib.set_property("pkg_config_name", "hiredis")
        lib.libdirs = []
        lib.bindirs = []
        lib.system_libs = ["hiredis"]
