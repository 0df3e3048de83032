#!/usr/bin/env bash
# Runs everything settle checks, from a fresh clone:
#   clang      Clang debug build: every test, and each libFuzzer target for a bounded time
#   tsan       ThreadSanitizer build: the tests labelled `concurrency`
#   release    release build: every benchmark once, briefly, so none can rot
#   gcc-asan   GCC debug with ASan + UBSan: every test, the examples, header self-containment,
#              clang-format, and the package test (install, then consume three ways)
# Installs missing Debian packages first (as root), else says what to install.
# Exits non-zero if anything fails; the last lines are CTest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh cmake ninja-build pkg-config g++ clang libclang-rt-14-dev clang-format \
    catch2 libbenchmark-dev libssl-dev libsqlite3-dev libpq-dev postgresql \
    libc++-14-dev libc++abi-14-dev

# gcc-asan runs last so that CTest's summary of the largest run closes the output.
start=$SECONDS
for preset in clang tsan release gcc-asan; do
    echo "==> preset $preset (at $((SECONDS - start)) s)"
    cmake --workflow --preset "$preset" --fresh
done
