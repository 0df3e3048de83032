# A stand-in for conan-center's sqlite3 recipe, for settle's package tests
# where no remote can be reached: the system's SQLite (Debian's
# libsqlite3-dev) under the names the real recipe gives, find_package(SQLite3),
# target SQLite::SQLite3, pkg-config sqlite3. Its headers are copied into the
# package; the library is the system's.
import os
import re

from conan import ConanFile
from conan.tools.files import copy, load

SYSTEM_INCLUDE = "/usr/include"


class Sqlite3StandIn(ConanFile):
    name = "sqlite3"
    package_type = "shared-library"
    settings = "os", "arch", "compiler", "build_type"

    def set_version(self):
        header = load(self, os.path.join(SYSTEM_INCLUDE, "sqlite3.h"))
        self.version = re.search(r'#define SQLITE_VERSION\s+"([0-9.]+)"', header).group(1)

    def package(self):
        for header in ("sqlite3.h", "sqlite3ext.h"):
            copy(self, header, SYSTEM_INCLUDE, os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.set_property("cmake_find_mode", "both")
        self.cpp_info.set_property("cmake_file_name", "SQLite3")
        self.cpp_info.set_property("cmake_target_name", "SQLite::SQLite3")
        self.cpp_info.set_property("pkg_config_name", "sqlite3")
        self.cpp_info.libdirs = []
        self.cpp_info.bindirs = []
        self.cpp_info.system_libs = ["sqlite3"]
