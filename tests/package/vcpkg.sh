#!/usr/bin/env bash
# tests/package/vcpkg.sh <source dir> <work dir>
#
# Installs settle with vcpkg from the overlay port in packaging/vcpkg/ports and
# builds consumers against it:
#   classic mode, no feature:      find_package(settle) -> settle::settle, GCC, Debug
#   classic mode, every backend:   find_package(settle COMPONENTS sqlite postgres mysql redis)
#                                  under GCC and Clang (hiredis through its CMake package), and
#                                  pkg-config settle-sqlite settle-postgres settle-mysql settle-redis
#   manifest mode:                 a vcpkg.json asking for settle[sqlite,postgres,mysql,redis], Clang
#   registry form:                 the portfile with vcpkg_from_github, from an archive of this tree
# The client libraries come from the stand-in ports in tests/package/stand-ins/vcpkg
# (the system's SQLite, libpq, MariaDB Connector/C and hiredis behind the CMake and
# pkg-config names the real ports give).
# Exits 77 (CTest: skipped) when vcpkg is not on PATH or VCPKG_ROOT is not set.
set -euo pipefail
source_dir=$(cd "$1" && pwd)
work=$2

if ! command -v vcpkg >/dev/null 2>&1 || [[ -z "${VCPKG_ROOT:-}" ]]; then
    echo "SKIPPED: vcpkg is not on PATH or VCPKG_ROOT is not set; the vcpkg port was not tested"
    exit 77
fi
rm -rf "$work"
mkdir -p "$work"
export VCPKG_BINARY_SOURCES=clear  # an overlay port from a working tree must never come from a cache
standins="$source_dir/tests/package/stand-ins"
consumer="$source_dir/tests/package/consumer"
toolchain="$VCPKG_ROOT/scripts/buildsystems/vcpkg.cmake"
# vcpkg install's options: settle's port from <ports dir>, everything under $work
options() {
    args=(--triplet=x64-linux "--overlay-triplets=$standins/vcpkg-triplets"
          "--overlay-ports=$1" "--overlay-ports=$standins/vcpkg"
          "--x-buildtrees-root=$work/buildtrees" "--x-packages-root=$work/packages")
}
options "$source_dir/packaging/vcpkg/ports"
common=("${args[@]}")

step() { printf '\n=== vcpkg: %s\n' "$*"; }
# run <log> <command>...: quiet unless it fails
run() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        cat "$log"
        echo "FAILED: $*"
        exit 1
    fi
}
# consume <build dir> <mode> <compiler> <build type> [cmake args]: configure, build, run
consume() {
    local build=$1 mode=$2 cxx=$3 type=$4
    shift 4
    run "$build.log" cmake -S "$consumer" -B "$build" -G Ninja "-DCMAKE_CXX_COMPILER=$cxx" \
        "-DCMAKE_BUILD_TYPE=$type" "-DSETTLE_CONSUME=$mode" "-DCMAKE_TOOLCHAIN_FILE=$toolchain" \
        -DVCPKG_TARGET_TRIPLET=x64-linux "$@"
    run "$build.build.log" cmake --build "$build"
    "$build/consumer"
    if [[ $mode != find_package_core ]]; then
        "$build/consumer_sql"
        "$build/consumer_mysql_redis"
    fi
}
# installed <root> <path>...: each path exists in the installed tree
installed() {
    local root=$1/x64-linux
    shift
    for path in "$@"; do
        [[ -e "$root/$path" ]] || { echo "FAILED: $root/$path is missing"; exit 1; }
    done
}

step "classic mode: settle, no feature"
classic=$work/classic
run "$work/classic-core.log" vcpkg install settle "${common[@]}" "--x-install-root=$classic"
installed "$classic" include/settle/settle.hpp share/settle/settleConfig.cmake share/settle/copyright \
    share/settle/usage share/pkgconfig/settle.pc
# Headers only: nothing tied to an architecture or a build type.
for unwanted in lib debug share/pkgconfig/settle-sqlite.pc share/pkgconfig/settle-postgres.pc \
    share/pkgconfig/settle-mysql.pc share/pkgconfig/settle-redis.pc share/doc; do
    [[ ! -e "$classic/x64-linux/$unwanted" ]] || { echo "FAILED: the package installs $unwanted"; exit 1; }
done
# A 32-bit consumer may use it: the version file does not compare pointer sizes.
cat >"$work/arch.cmake" <<CMAKE
cmake_minimum_required(VERSION 3.23)
set(CMAKE_SIZEOF_VOID_P 4)
set(PACKAGE_FIND_VERSION 0.1)
set(PACKAGE_FIND_VERSION_MAJOR 0)
set(PACKAGE_FIND_VERSION_MINOR 1)
include("$classic/x64-linux/share/settle/settleConfigVersion.cmake")
if(PACKAGE_VERSION_UNSUITABLE OR NOT PACKAGE_VERSION_COMPATIBLE)
  message(FATAL_ERROR "FAILED: a 32-bit consumer cannot use the package (\${PACKAGE_VERSION})")
endif()
CMAKE
cmake -P "$work/arch.cmake"
consume "$work/classic-core-g++" find_package_core g++ Debug "-DVCPKG_INSTALLED_DIR=$classic" \
    -DVCPKG_MANIFEST_MODE=OFF

step "classic mode: settle[sqlite,postgres,mysql,redis]"
run "$work/classic-sql.log" vcpkg install "settle[sqlite,postgres,mysql,redis]" --recurse \
    "${common[@]}" "--x-install-root=$classic"
installed "$classic" share/pkgconfig/settle-sqlite.pc share/pkgconfig/settle-postgres.pc \
    share/pkgconfig/settle-mysql.pc share/pkgconfig/settle-redis.pc share/unofficial-sqlite3 \
    share/libpq share/hiredis lib/pkgconfig/libmariadb.pc
for cxx in g++ clang++; do
    consume "$work/classic-sql-$cxx" find_package "$cxx" Release "-DVCPKG_INSTALLED_DIR=$classic" \
        -DVCPKG_MANIFEST_MODE=OFF
    grep -q "^settle_DIR:PATH=$classic/x64-linux/share/settle$" "$work/classic-sql-$cxx/CMakeCache.txt" ||
        { echo "FAILED: settle was not found in the vcpkg installed tree"; exit 1; }
    # The port's hiredis::hiredis, not pkg-config's.
    grep -q "^hiredis_DIR:PATH=$classic/x64-linux/share/hiredis$" "$work/classic-sql-$cxx/CMakeCache.txt" ||
        { echo "FAILED: settle's redis component did not take hiredis' CMake package"; exit 1; }
done
export PKG_CONFIG_PATH="$classic/x64-linux/share/pkgconfig:$classic/x64-linux/lib/pkgconfig"
read -r -a flags <<<"$(pkg-config --cflags --libs settle-sqlite settle-postgres)"
run "$work/pkg-config.log" g++ -std=c++20 -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror \
    "$consumer/main_sql.cpp" "${flags[@]}" -o "$work/pkg-config-consumer_sql"
"$work/pkg-config-consumer_sql"
read -r -a flags <<<"$(pkg-config --cflags --libs settle-mysql settle-redis)"
run "$work/pkg-config-mysql-redis.log" g++ -std=c++20 -Wall -Wextra -Wpedantic -Wconversion \
    -Wshadow -Werror "$consumer/main_mysql_redis.cpp" "${flags[@]}" \
    -o "$work/pkg-config-consumer_mysql_redis"
"$work/pkg-config-consumer_mysql_redis"
unset PKG_CONFIG_PATH

step "manifest mode: vcpkg.json asks for settle[sqlite,postgres,mysql,redis]"
manifest=$work/manifest
mkdir -p "$manifest"
cat >"$manifest/vcpkg.json" <<JSON
{
  "dependencies": [{ "name": "settle", "features": ["sqlite", "postgres", "mysql", "redis"] }],
  "vcpkg-configuration": {
    "overlay-ports": ["$source_dir/packaging/vcpkg/ports", "$standins/vcpkg"],
    "overlay-triplets": ["$standins/vcpkg-triplets"]
  }
}
JSON
consume "$manifest/build" find_package clang++ Release "-DVCPKG_MANIFEST_DIR=$manifest" \
    "-DVCPKG_INSTALL_OPTIONS=--x-buildtrees-root=$work/buildtrees;--x-packages-root=$work/packages"
grep -q "^settle_DIR:PATH=$manifest/build/vcpkg_installed/x64-linux/share/settle$" \
    "$manifest/build/CMakeCache.txt" || { echo "FAILED: manifest mode did not provide settle"; exit 1; }

step "registry form: vcpkg_from_github, from an archive of this tree"
# What the public registry's port does: the same portfile, the source from a
# release archive. Here the archive is made from this tree (committed files plus
# uncommitted changes to them) and put where vcpkg looks before downloading.
if git -C "$source_dir" rev-parse --git-dir >/dev/null 2>&1; then
    version=$(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$source_dir/packaging/vcpkg/ports/settle/vcpkg.json")
    tree=$(git -C "$source_dir" stash create)
    mkdir -p "$work/downloads" "$work/registry/settle"
    archive=$work/downloads/settle-test-settle-v$version.tar.gz
    git -C "$source_dir" archive --format=tar.gz "--prefix=settle-$version/" "${tree:-HEAD}" >"$archive"
    sha=$(sha512sum "$archive" | cut -d' ' -f1)
    cp "$source_dir/packaging/vcpkg/ports/settle/"* "$work/registry/settle/"
    source_line='get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../../.." ABSOLUTE)'
    grep -qxF "$source_line" "$work/registry/settle/portfile.cmake" ||
        { echo "FAILED: the portfile no longer has the line this test replaces"; exit 1; }
    python3 - "$work/registry/settle/portfile.cmake" "$source_line" "$sha" <<'PY'
import sys
path, line, sha = sys.argv[1:]
text = open(path).read()
text = text.replace(line, f"""vcpkg_from_github(
    OUT_SOURCE_PATH SOURCE_PATH
    REPO settle-test/settle
    REF "v${{VERSION}}"
    SHA512 {sha}
    HEAD_REF main
)""")
open(path, "w").write(text)
PY
    options "$work/registry"
    VCPKG_DOWNLOADS=$work/downloads run "$work/registry.log" vcpkg install "settle[sqlite]" \
        "${args[@]}" "--x-install-root=$work/registry-installed"
    grep -q "settle-test-settle-v$version.tar.gz" "$work/registry.log" ||
        { echo "FAILED: the registry form did not use the archive"; exit 1; }
    installed "$work/registry-installed" include/settle/settle.hpp share/settle/settleConfig.cmake \
        share/pkgconfig/settle-sqlite.pc
else
    echo "not a git checkout: skipped"
fi

printf '\nvcpkg: PASS\n'
