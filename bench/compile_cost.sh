#!/usr/bin/env bash
# What `#include <settle/settle.hpp>` costs to compile, against a TU that
# includes exactly the standard headers settle's headers include (read from
# the compiler's own -H output, so the list cannot drift). For GCC and Clang:
# the minimum over several `-fsyntax-only` runs of user + system CPU time.
# Prints the ratios; exits 1 when one is above the goal.
#
# Usage: bench/compile_cost.sh [runs] [goal]     (defaults: 7 runs, goal 1.3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
goal=${2:-1.3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

printf '#include <settle/settle.hpp>\n' > "$out/umbrella.cpp"

# CPU seconds (user + system) of the cheapest of $runs compilations.
cpu_min() {
    local cxx=$1 tu=$2 best="" t
    for _ in $(seq "$runs"); do
        /usr/bin/time -f '%U %S' -o "$out/time" "$cxx" -std=c++20 -Iinclude -fsyntax-only "$tu"
        t=$(awk '{ print $1 + $2 }' "$out/time")
        best=$(awk -v a="$t" -v b="$best" 'BEGIN { print (b == "" || a < b) ? a : b }')
    done
    echo "$best"
}

status=0
for cxx in g++ clang++; do
    # -H prints every header opened, one dot per nesting level. Keep the ones
    # opened directly by the TU or by a settle header, outside include/settle.
    "$cxx" -std=c++20 -Iinclude -fsyntax-only -H "$out/umbrella.cpp" 2> "$out/$cxx.h"
    awk -v settle="$PWD/include/settle/" '
        /^\.+ / {
            depth = length($1); path = $2
            parent_is_settle[depth] = index(path, settle) == 1 || index(path, "include/settle/") == 1
            if (!parent_is_settle[depth] && (depth == 1 || parent_is_settle[depth - 1])) {
                n = split(path, part, "/"); print part[n]
            }
        }' "$out/$cxx.h" | sort -u | sed 's/.*/#include <&>/' > "$out/baseline-$cxx.cpp"

    umbrella=$(cpu_min "$cxx" "$out/umbrella.cpp")
    baseline=$(cpu_min "$cxx" "$out/baseline-$cxx.cpp")
    headers=$(wc -l < "$out/baseline-$cxx.cpp")
    if ! awk -v c="$cxx" -v u="$umbrella" -v b="$baseline" -v n="$headers" -v g="$goal" 'BEGIN {
            printf "%-8s settle.hpp %.2f s   its %d standard headers %.2f s   ratio %.2fx (goal %.2fx)\n",
                   c, u, n, b, u / b, g
            exit (u / b > g) }'; then
        status=1
    fi
done
exit "$status"
