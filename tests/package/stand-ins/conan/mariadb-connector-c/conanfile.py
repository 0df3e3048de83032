# A stand-in for conan-center's mariadb-connector-c recipe, for settle's
# package tests where no remote can be reached: the system's MariaDB
# Connector/C (Debian's libmariadb-dev) under the names the real recipe gives,
# find_package(mariadb-connector-c), target
# mariadb-connector-c::mariadb-connector-c, pkg-config libmariadb, headers in
# include/mariadb. Its headers are copied into the package; the library is the
# system's.
import os
import re

from conan import ConanFile
from conan.tools.files import copy, load

SYSTEM_INCLUDE = "/usr/include/mariadb"


class MariadbConnectorCStandIn(ConanFile):
    name = "mariadb-connector-c"
    package_type = "shared-library"
    settings = "os", "arch", "compiler", "build_type"

    def set_version(self):
        header = load(self, os.path.join(SYSTEM_INCLUDE, "mariadb_version.h"))
        self.version = re.search(r'#define MARIADB_PACKAGE_VERSION "([0-9.]+)"', header).group(1)

    def package(self):
        copy(self, "*.h", SYSTEM_INCLUDE, os.path.join(self.package_folder, "include", "mariadb"))

    def package_info(self):
        self.cpp_info.set_property("pkg_config_name", "libmariadb")
        self.cpp_info.includedirs.append(os.path.join("include", "mariadb"))
        self.cpp_info.libdirs = []
        self.cpp_info.bindirs = []
        self.cpp_info.system_libs = ["mariadb"]
