#!/usr/bin/env python3
"""Draws what settle costs against hand-written code, from one benchmark run.

Runs settle's benchmark binaries from a release build, each pairing a settle
benchmark with the least hand-written code doing the same work (its
"baseline/..." twin, in the same run), and writes an SVG bar chart of
settle's time per operation over the baseline's: 1.0x costs the same, 2x
takes twice as long, 0.5x half as long.

    scripts/bench_plot.py [--build build/release] [--output F] [--min-time S]
                          [--repetitions N]

The binaries of server backends run when their server is configured, as the
benchmarks themselves expect (SETTLE_POSTGRES, SETTLE_MYSQL, SETTLE_REDIS);
the others are left out of the chart, and the script says so. A pair whose
benchmarks are missing from a run is an error: the names below follow the
benchmarks' own.
"""

import argparse
import html
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

# binary -> (server variable or None, [(what, settle benchmark, its baseline)]).
PAIRS = {
    "core": (None, [
        ("SHA-256, 1 KiB", "sha256/hash/1024", "baseline/libcrypto_sha256/1024"),
        ("UUIDv7, generate", "uuid/generate_v7/system_clock",
         "baseline/uuid/clock_and_random/system_clock"),
        ("UUID, parse", "uuid/parse", "baseline/uuid/parse_from_chars"),
    ]),
    "fsm": (None, [
        ("transition table, 5 states", "fsm/next/small_5_states", "baseline/switch/small_5_states"),
        ("transition table, 50 states", "fsm/next/large_50_states_200_rows",
         "baseline/switch/large_50_states_200_rows"),
    ]),
    "retry": (None, [
        ("ladder delay", "delay/ladder", "baseline/delay/ladder"),
        ("retry, first try succeeds", "retry/first_time_success", "baseline/retry/direct_call"),
    ]),
    "version": (None, [
        ("memory compare-and-set", "version/compare_and_set/memory/real_time/threads:1",
         "baseline/compare_and_set/unordered_map_mutex/real_time/threads:1"),
    ]),
    "idempotency": (None, [
        ("memory idempotency, fresh key",
         "idempotency/run/fresh_key/iterations:131072/real_time/threads:1",
         "baseline/unordered_map_mutex/fresh_key/iterations:131072/real_time/threads:1"),
        ("memory idempotency, replay", "idempotency/run/replayed_key/real_time/threads:1",
         "baseline/unordered_map_mutex/replayed_key/real_time/threads:1"),
    ]),
    "outbox": (None, [
        ("memory relay, batch of 1", "outbox/relay/batch/1",
         "baseline/relay_copying/batch/1"),
        ("memory relay, batch of 16", "outbox/relay/batch/16",
         "baseline/relay_copying/batch/16"),
        ("memory relay, batch of 256", "outbox/relay/batch/256",
         "baseline/relay_copying/batch/256"),
        ("memory append", "outbox/append", "baseline/append"),
    ]),
    "sqlite": (None, [
        ("SQLite relay, batch of 1", "relay/1/real_time", "baseline/relay_sql/1/real_time"),
        ("SQLite relay, batch of 16", "relay/16/real_time", "baseline/relay_sql/16/real_time"),
        ("SQLite relay, batch of 256", "relay/256/real_time", "baseline/relay_sql/256/real_time"),
        ("SQLite append", "append/real_time", "baseline/insert/real_time"),
        ("SQLite idempotency", "idempotency/real_time", "baseline/idempotency_sql/real_time"),
    ]),
    "postgres": ("SETTLE_POSTGRES", [
        ("PostgreSQL relay, batch of 1", "relay/1/real_time", "baseline/relay_sql/1/real_time"),
        ("PostgreSQL relay, batch of 16", "relay/16/real_time", "baseline/relay_sql/16/real_time"),
        ("PostgreSQL relay, batch of 256", "relay/256/real_time",
         "baseline/relay_sql/256/real_time"),
        ("PostgreSQL append", "append/real_time", "baseline/insert/real_time"),
        ("PostgreSQL idempotency", "idempotency/real_time", "baseline/idempotency_sql/real_time"),
    ]),
    "mysql": ("SETTLE_MYSQL", [
        ("MariaDB relay, batch of 1", "relay/1/real_time", "baseline/relay_sql/1/real_time"),
        ("MariaDB relay, batch of 16", "relay/16/real_time", "baseline/relay_sql/16/real_time"),
        ("MariaDB relay, batch of 256", "relay/256/real_time", "baseline/relay_sql/256/real_time"),
        ("MariaDB append", "append/real_time", "baseline/insert/real_time"),
        ("MariaDB idempotency", "idempotency/real_time", "baseline/idempotency_sql/real_time"),
    ]),
    "redis": ("SETTLE_REDIS", [
        ("Redis idempotency, claim + complete", "idempotency/claim_complete/real_time",
         "baseline/set_nx_px_set/real_time"),
        ("Redis compare-and-set", "versioned/compare_and_set/real_time", "baseline/set/real_time"),
        ("Redis stream publish", "stream/publish/real_time", "baseline/xadd/real_time"),
        ("Redis stream consume", "stream/consume/real_time", "baseline/xreadgroup_xack/real_time"),
    ]),
}


def run(binary, min_time, repetitions):
    """The benchmarks of one binary, by name: median real time per iteration, in ns."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "run.json"
        command = [str(binary), f"--benchmark_min_time={min_time}",
                   f"--benchmark_repetitions={repetitions}",
                   f"--benchmark_out={out}", "--benchmark_out_format=json"]
        finished = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        if finished.returncode != 0:
            sys.exit(f"bench_plot: {binary.name} failed:\n{finished.stderr}")
        report = json.loads(out.read_text())
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    times = {}
    for b in report["benchmarks"]:
        if repetitions > 1 and b.get("aggregate_name") != "median":
            continue
        if b.get("error_occurred"):
            sys.exit(f"bench_plot: {binary.name}: {b['run_name']}: {b.get('error_message')}")
        times[b["run_name"]] = b["real_time"] * scale[b["time_unit"]]
    return times


def ratios(build, min_time, repetitions):
    rows = []
    for binary_name, (server, pairs) in PAIRS.items():
        binary = build / "bench" / f"settle_bench_{binary_name}"
        if server and not os.environ.get(server):
            print(f"bench_plot: {binary_name} left out: {server} is not set")
            continue
        if not binary.exists():
            sys.exit(f"bench_plot: {binary} not found; build the release preset first")
        print(f"bench_plot: running {binary.name}")
        times = run(binary, min_time, repetitions)
        for what, mine, theirs in pairs:
            for name in (mine, theirs):
                if name not in times:
                    sys.exit(f"bench_plot: {binary.name} has no benchmark {name}")
            rows.append((what, times[mine] / times[theirs], times[mine]))
    return rows


def duration(ns):
    """A time per operation for people: 3.2 ns, 41 us, 1.3 ms."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def svg(rows, title):
    """A horizontal bar per row on a log scale from 1/4x to 64x, 1x marked, each
    labelled with its ratio and settle's own time per operation."""
    left, bar, gap, width = 250, 16, 6, 420
    lo, hi = math.log2(0.25), math.log2(64)
    top = 50
    height = top + len(rows) * (bar + gap) + 40

    def x(ratio):
        r = min(max(math.log2(ratio), lo), hi)
        return left + (r - lo) / (hi - lo) * width

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 140}" '
           f'height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{html.escape(title)}</text>']
    for tick in (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64):
        tx = x(tick)
        stroke = "#333" if tick == 1 else "#ddd"
        out.append(f'<line x1="{tx:.1f}" y1="{top - 8}" x2="{tx:.1f}" y2="{height - 30}" '
                   f'stroke="{stroke}"/>')
        out.append(f'<text x="{tx:.1f}" y="{height - 14}" text-anchor="middle">{tick:g}x</text>')
    for i, (label, ratio, ns) in enumerate(rows):
        y = top + i * (bar + gap)
        colour = "#4c78a8" if ratio <= 1.1 else "#f58518" if ratio <= 2 else "#e45756"
        x0, x1 = sorted((x(1), x(ratio)))
        out.append(f'<text x="{left - 8}" y="{y + bar - 4}" text-anchor="end">'
                   f'{html.escape(label)}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{bar}" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{max(x(1), x(ratio)) + 4:.1f}" y="{y + bar - 4}">'
                   f'{ratio:.2f}x ({duration(ns)})</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=pathlib.Path, default=ROOT / "build" / "release")
    parser.add_argument("--output", type=pathlib.Path,
                        default=ROOT / "docs" / "images" / "benchmarks.svg")
    parser.add_argument("--min-time", type=float, default=0.5)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    rows = ratios(args.build, args.min_time, args.repetitions)
    title = "settle's time per operation over hand-written code (lower is better)"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(svg(rows, title))
    for label, ratio, ns in rows:
        print(f"  {label:32} {ratio:6.2f}x   settle {duration(ns)}")
    print(f"bench_plot: wrote {args.output}")


if __name__ == "__main__":
    main()
