#!/usr/bin/env bash
# tests/package/conan.sh <source dir> <work dir>
#
# Creates the conan package from packaging/conan and runs its test_package
# (find_package(settle), the components, pkg-config) with every option:
#   no option, GCC;  every backend, GCC;  every backend, Clang
# then checks that one package serves every architecture and build type and
# that validate() refuses C++17 and GCC 11. The client libraries come from the
# stand-in recipes in tests/package/stand-ins/conan (the system's SQLite, libpq,
# MariaDB Connector/C and hiredis under the names the real recipes give). conan runs in a home of its
# own under <work dir>, with no remote.
# Exits 77 (CTest: skipped) when conan is not on PATH.
set -euo pipefail
source_dir=$(cd "$1" && pwd)
work=$2

if ! command -v conan >/dev/null 2>&1; then
    echo "SKIPPED: conan is not on PATH; the conan recipe was not tested"
    exit 77
fi
rm -rf "$work"
mkdir -p "$work"
recipe=$source_dir/packaging/conan
standins=$source_dir/tests/package/stand-ins/conan

step() { printf '\n=== conan: %s\n' "$*"; }
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
# refused <log> <expected message> <command>...: the command fails, saying so
refused() {
    local log=$1 expected=$2
    shift 2
    if "$@" >"$log" 2>&1; then
        cat "$log"
        echo "FAILED: accepted: $*"
        exit 1
    fi
    grep -q "$expected" "$log" || { cat "$log"; echo "FAILED: no '$expected' from: $*"; exit 1; }
}

step "a conan home of its own, without remotes"
export CONAN_HOME=$work/home
mkdir -p "$CONAN_HOME"
conan profile detect --force >"$work/profile.log" 2>&1
conan remote list 2>/dev/null | sed -n 's/^\([^:]*\):.*/\1/p' | while read -r remote; do
    conan remote remove "$remote" >/dev/null
done
# The test package builds under <work dir>, not in the source tree.
printf '%s\n' 'core:non_interactive = True' 'tools.cmake.cmaketoolchain:generator = Ninja' \
    "tools.cmake.cmake_layout:test_folder = $work/test_package" >"$CONAN_HOME/global.conf"
gcc=(-s compiler=gcc -s compiler.version=12 -s compiler.libcxx=libstdc++11 -s compiler.cppstd=20
     -c 'tools.build:compiler_executables={"c": "gcc", "cpp": "g++"}')
clang=(-s compiler=clang -s compiler.version=14 -s compiler.libcxx=libstdc++11 -s compiler.cppstd=20
       -c 'tools.build:compiler_executables={"c": "clang", "cpp": "clang++"}')
both=(-o 'settle/*:sqlite=True' -o 'settle/*:postgres=True' -o 'settle/*:mysql=True'
      -o 'settle/*:redis=True')

step "the stand-ins for sqlite3, libpq, mariadb-connector-c and hiredis"
for standin in sqlite3 libpq mariadb-connector-c hiredis; do
    run "$work/$standin.log" conan create "$standins/$standin" "${gcc[@]}"
done

step "conan create, no option (GCC)"
run "$work/create-core.log" conan create "$recipe" "${gcc[@]}" --build=missing
grep "^settle " "$work/create-core.log"

step "conan create, every backend (GCC)"
run "$work/create-sql.log" conan create "$recipe" "${gcc[@]}" "${both[@]}" --build=missing
grep "^settle" "$work/create-sql.log"
for backend in sqlite postgres mysql redis; do
    grep -q "^settle::$backend on" "$work/create-sql.log" ||
        { echo "FAILED: the test package did not run its $backend program"; exit 1; }
done

# settle::settle is the core alone, as in settle's own CMake package: CMakeDeps'
# target for the whole package (linking every component) must be another one.
targets=$(find "$work/test_package" -path '*gcc*' -name 'settle-Target-release.cmake')
[[ -n "$targets" ]] || { echo "FAILED: no CMakeDeps files for settle under $work/test_package"; exit 1; }
if grep -q 'TARGET settle::settle APPEND PROPERTY INTERFACE_LINK_LIBRARIES settle::' $targets; then
    echo "FAILED: with CMakeDeps, settle::settle links the backends"
    exit 1
fi

step "conan create, every backend (Clang)"
run "$work/create-clang.log" conan create "$recipe" "${clang[@]}" "${both[@]}" --build=missing
grep "^settle" "$work/create-clang.log"

step "one package for every architecture and build type"
version=$(conan inspect "$recipe" --format=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
ids() {
    conan graph info "--requires=settle/$version" "$@" --format=json 2>/dev/null |
        python3 -c 'import json,sys
nodes = json.load(sys.stdin)["graph"]["nodes"].values()
print(" ".join(n["package_id"] for n in nodes if n["ref"].startswith("settle/")))'
}
reference=$(ids "${gcc[@]}")
for settings in "-s arch=x86 -s build_type=Debug" "-s arch=armv8 -s build_type=RelWithDebInfo -s os=Macos"; do
    # shellcheck disable=SC2086
    other=$(ids "${gcc[@]}" $settings)
    [[ -n "$reference" && "$other" == "$reference" ]] ||
        { echo "FAILED: package id '$other' with $settings, '$reference' without"; exit 1; }
done
packages=$(conan list "settle/$version:*" --format=json |
    python3 -c 'import json,sys
data = json.load(sys.stdin)["Local Cache"]
print(sum(len(r.get("packages", {})) for v in data.values() for r in v.get("revisions", {}).values()))')
[[ "$packages" == 1 ]] || { echo "FAILED: $packages packages of settle, expected one"; exit 1; }
echo "package id $reference for x86_64, x86, armv8; Release, Debug, RelWithDebInfo"

step "validate() refuses what cannot build settle"
refused "$work/cpp17.log" "C++ standard (20)" \
    conan install "--requires=settle/$version" "${gcc[@]}" -s compiler.cppstd=17
refused "$work/gcc11.log" "settle needs C++20 as gcc 12 or later" \
    conan install "--requires=settle/$version" "${gcc[@]}" -s compiler.version=11
echo "C++17 and GCC 11 refused"

printf '\nconan: PASS\n'
