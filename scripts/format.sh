#!/usr/bin/env bash
# Rewrites every C++ file in the tree with clang-format, as the format test expects
# (not the generated single header: scripts/single_header.py writes it).
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files -z -- '*.hpp' '*.cpp' ':!single_include' | xargs -0 clang-format -i
