# A stand-in for conan-center's libpq recipe, for settle's package tests where
# no remote can be reached: the system's libpq (Debian's libpq-dev) under the
# names the real recipe gives, find_package(PostgreSQL), target
# PostgreSQL::PostgreSQL, pkg-config libpq. Its headers are copied into the
# package; the library is the system's.
import os
import re

from conan import ConanFile
from conan.tools.files import copy, load

SYSTEM_INCLUDE = "/usr/include/postgresql"


class LibpqStandIn(ConanFile):
    name = "libpq"
    package_type = "shared-library"
    settings = "os", "arch", "compiler", "build_type"

    def set_version(self):
        header = load(self, os.path.join(SYSTEM_INCLUDE, "pg_config.h"))
        self.version = re.search(r'#define PG_VERSION "([0-9.]+)', header).group(1)

    def package(self):
        for header in ("libpq-fe.h", "postgres_ext.h", "pg_config_ext.h"):
            copy(self, header, SYSTEM_INCLUDE, os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.set_property("cmake_find_mode", "both")
        self.cpp_info.set_property("cmake_file_name", "PostgreSQL")
        self.cpp_info.set_property("cmake_target_name", "PostgreSQL::PostgreSQL")
        self.cpp_info.set_property("pkg_config_name", "libpq")
        self.cpp_info.libdirs = []
        self.cpp_info.bindirs = []
        self.cpp_info.system_libs = ["pq"]
