#!/usr/bin/env bash
# Compile time of the 50-state, 200-row table against the same table as a
# switch (bench/fsm_compile_time.cpp), with GCC and Clang at -O2; the median
# of several runs each. Usage: bench/fsm_compile_time.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for cxx in g++ clang++; do
    for variant in SWITCH TABLE; do
        for _ in $(seq "$runs"); do
            start=$(date +%s%N)
            "$cxx" -std=c++20 -O2 -Iinclude -Ibench "-DSETTLE_BENCH_FSM_${variant}_ONLY" \
                -c bench/fsm_compile_time.cpp -o "$out/tu.o"
            echo $(( ($(date +%s%N) - start) / 1000000 ))
        done | median > "$out/$cxx-$variant"
    done
    switch_ms=$(cat "$out/$cxx-SWITCH")
    table_ms=$(cat "$out/$cxx-TABLE")
    awk -v c="$cxx" -v s="$switch_ms" -v t="$table_ms" \
        'BEGIN { printf "%-8s switch %5d ms   table %5d ms   ratio %.2fx\n", c, s, t, t / s }'
done
