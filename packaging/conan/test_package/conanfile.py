import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout


class SettleTestConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "PkgConfigDeps", "VirtualRunEnv"
    test_type = "explicit"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def generate(self):
        # Which backends the tested package was built with: the test uses exactly those.
        options = self.dependencies["settle"].options
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["SETTLE_WITH_SQLITE"] = bool(options.sqlite)
        toolchain.cache_variables["SETTLE_WITH_POSTGRES"] = bool(options.postgres)
        toolchain.cache_variables["SETTLE_WITH_MYSQL"] = bool(options.mysql)
        toolchain.cache_variables["SETTLE_WITH_REDIS"] = bool(options.redis)
        toolchain.cache_variables["SETTLE_PKG_CONFIG_DIR"] = self.generators_folder.replace("\\", "/")
        toolchain.user_presets_path = False  # write nothing next to the sources
        toolchain.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if can_run(self):
            for program in ("test_package", "test_package_sqlite", "test_package_postgres",
                            "test_package_mysql", "test_package_redis"):
                path = os.path.join(self.cpp.build.bindir, program)
                if os.path.exists(path):
                    self.run(path, env="conanrun")
