import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout
from conan.tools.scm import Version

required_conan_version = ">=2.0"


class SettleConan(ConanFile):
    name = "settle"
    description = ("Consistency primitives for C++20, header-only: idempotency keys, optimistic "
                   "version stamps, state-machine transition guards, retry ladders, "
                   "transactional outbox/inbox records")
    license = "BSL-1.0"
    topics = ("idempotency", "outbox", "optimistic-locking", "retry", "state-machine",
              "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "sqlite": [True, False],    # settle::sqlite, settle/stores/sqlite.hpp, on sqlite3
        "postgres": [True, False],  # settle::postgres, settle/stores/postgres.hpp, on libpq
        "mysql": [True, False],     # settle::mysql, settle/stores/mysql.hpp, on MariaDB Connector/C
        "redis": [True, False],     # settle::redis, settle/stores/redis.hpp, on hiredis
    }
    default_options = {"sqlite": False, "postgres": False, "mysql": False, "redis": False}
    no_copy_source = True

    # This recipe lives in packaging/conan; the library is two levels up.
    @property
    def _repository(self):
        return os.path.join(self.recipe_folder, os.pardir, os.pardir)

    # The compilers settle is built and tested with; older ones lack parts of C++20 it uses.
    @property
    def _min_compiler_versions(self):
        return {"gcc": "12", "clang": "14"}

    def set_version(self):
        header = load(self, os.path.join(self._repository, "include", "settle", "version.hpp"))
        parts = [re.search(rf"#define SETTLE_VERSION_{part} (\d+)", header).group(1)
                 for part in ("MAJOR", "MINOR", "PATCH")]
        self.version = self.version or ".".join(parts)

    def export_sources(self):
        # What the package holds: the headers and the license.
        for pattern in ("LICENSE", "include/*"):
            copy(self, pattern, self._repository, self.export_sources_folder)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # A header-only package: the client library's headers and libraries reach the consumer.
        if self.options.sqlite:
            self.requires("sqlite3/[>=3.37 <4]", transitive_headers=True, transitive_libs=True)
        if self.options.postgres:
            self.requires("libpq/[>=10]", transitive_headers=True, transitive_libs=True)
        if self.options.mysql:
            self.requires("mariadb-connector-c/[>=3.1 <4]", transitive_headers=True,
                          transitive_libs=True)
        if self.options.redis:
            self.requires("hiredis/[>=0.14 <2]", transitive_headers=True, transitive_libs=True)

    def package_id(self):
        # Headers only: one package for every os, arch, compiler and build type.
        self.info.clear()

    def validate(self):
        check_min_cppstd(self, 20)
        compiler = str(self.settings.compiler)
        minimum = self._min_compiler_versions.get(compiler)
        if minimum is None:
            self.output.warning(f"settle is tested with {self._min_compiler_versions}; "
                                f"{compiler} is assumed to support C++20")
        elif Version(self.settings.compiler.version) < minimum:
            raise ConanInvalidConfiguration(
                f"settle needs C++20 as {compiler} {minimum} or later implements it; "
                f"this is {compiler} {self.settings.compiler.version}")

    def package(self):
        # The headers, laid out as settle's own install lays them out. Its CMake
        # and pkg-config files are not needed: CMakeDeps and PkgConfigDeps write
        # the consumer's from package_info(), under the same names.
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"),
             os.path.join(self.package_folder, "include"))
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))

    def package_info(self):
        # The names of settle's own CMake package and pkg-config files. CMakeDeps
        # also defines a target for the whole package, linking every component;
        # it must not be settle::settle, which is the core alone, as in settle's
        # own package, so it is settle::all.
        self.cpp_info.set_property("cmake_file_name", "settle")
        self.cpp_info.set_property("cmake_target_name", "settle::all")
        self.cpp_info.set_property("pkg_config_name", "settle")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "settle::settle")
        core.set_property("pkg_config_name", "settle")
        core.bindirs = []
        core.libdirs = []

        if self.options.sqlite:
            sqlite = self.cpp_info.components["sqlite"]
            sqlite.set_property("cmake_target_name", "settle::sqlite")
            sqlite.set_property("pkg_config_name", "settle-sqlite")
            sqlite.requires = ["core", "sqlite3::sqlite3"]
            sqlite.bindirs = []
            sqlite.libdirs = []
            sqlite.includedirs = []
        if self.options.postgres:
            postgres = self.cpp_info.components["postgres"]
            postgres.set_property("cmake_target_name", "settle::postgres")
            postgres.set_property("pkg_config_name", "settle-postgres")
            postgres.requires = ["core", "libpq::libpq"]
            postgres.bindirs = []
            postgres.libdirs = []
            postgres.includedirs = []
        if self.options.mysql:
            mysql = self.cpp_info.components["mysql"]
            mysql.set_property("cmake_target_name", "settle::mysql")
            mysql.set_property("pkg_config_name", "settle-mysql")
            mysql.requires = ["core", "mariadb-connector-c::mariadb-connector-c"]
            mysql.bindirs = []
            mysql.libdirs = []
            mysql.includedirs = []
        if self.options.redis:
            redis = self.cpp_info.components["redis"]
            redis.set_property("cmake_target_name", "settle::redis")
            redis.set_property("pkg_config_name", "settle-redis")
            redis.requires = ["core", "hiredis::hiredislib"]
            redis.bindirs = []
            redis.libdirs = []
            redis.includedirs = []
