#!/usr/bin/env bash
# Builds and runs settle's showcase program (examples/showcase.cpp): an order
# flow on SQLite that survives killed relays, a flaky gateway and repeated
# requests, then checks its invariants. Arguments go to the program
# (--help lists them). Needs a C++20 compiler, CMake and SQLite 3
# (libsqlite3-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/demo
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSETTLE_BUILD_TESTS=OFF \
    -DSETTLE_BUILD_BENCHMARKS=OFF -DSETTLE_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" --target settle_showcase >/dev/null
exec "$build/examples/settle_showcase" "$@"
