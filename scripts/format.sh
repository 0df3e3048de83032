#!/usr/bin/env bash
# Rewrites every C++ file in the tree with clang-format, as the format test expects.
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files -z -- '*.hpp' '*.cpp' | xargs -0 clang-format -i
