#!/usr/bin/env bash
# Runs everything settle checks, from a fresh clone:
#   clang      Clang debug build: every test, and each libFuzzer target for a bounded time
#   tsan       ThreadSanitizer build: the tests labelled `concurrency`
#   release    GCC release build (-O2, warnings as errors): every test, and every benchmark
#              once, briefly, so none can rot
#   gcc-asan   GCC debug with ASan + UBSan: every test, the examples, header self-containment,
#              clang-format, and the package tests (label package): install, then consume
#              with find_package, add_subdirectory, FetchContent, pkg-config and the single
#              header; the vcpkg port and the conan recipe; the single header up to date and
#              the core tests against it
# Installs missing Debian packages first (as root), else says what to install.
# Exits non-zero if anything fails; the last lines are CTest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh cmake ninja-build pkg-config g++ clang libclang-rt-14-dev clang-format \
    catch2 libbenchmark-dev libssl-dev libsqlite3-dev libpq-dev postgresql \
    libmariadb-dev mariadb-server redis-server libhiredis-dev \
    libc++-14-dev libc++abi-14-dev python3 doxygen

# vcpkg and conan for the package tests: the offline clients in ../shared/pkgtools,
# when they are there, set up once (in /opt/pkgtools as root, else in build/pkgtools).
# Without them those two tests say they were skipped.
if ! command -v vcpkg >/dev/null 2>&1 || ! command -v conan >/dev/null 2>&1; then
    pkgtools=""
    for prefix in "${PKGTOOLS_PREFIX:-}" /opt/pkgtools "$PWD/build/pkgtools"; do
        if [[ -n "$prefix" && -f "$prefix/env.sh" ]]; then
            pkgtools=$prefix
            break
        fi
    done
    # next to the repository (a worktree one level further down finds them too)
    for setup in ../shared/pkgtools/setup.sh ../../shared/pkgtools/setup.sh; do
        if [[ -z "$pkgtools" && -x $setup ]]; then
            pkgtools=/opt/pkgtools
            [[ $(id -u) -eq 0 ]] || pkgtools=$PWD/build/pkgtools
            echo "==> setting up vcpkg and conan in $pkgtools"
            "$setup" "$pkgtools" || pkgtools=""
            break
        fi
    done
    if [[ -n "$pkgtools" ]]; then
        # shellcheck disable=SC1091
        . "$pkgtools/env.sh"
    else
        echo "==> vcpkg and conan not found: their package tests will be skipped"
    fi
fi

# gcc-asan runs last so that CTest's summary of the largest run closes the output.
start=$SECONDS
for preset in clang tsan release gcc-asan; do
    echo "==> preset $preset (at $((SECONDS - start)) s)"
    cmake --workflow --preset "$preset" --fresh
done
