#!/usr/bin/env bash
# A server left running by a test run stopped early (--stop-on-failure,
# Ctrl-C) must not fail the next run or lend it its data: `postgres.sh start`
# on the same directory gives a fresh, empty server.
set -euo pipefail
script=${1:?usage: fresh_start.sh <path to scripts/postgres.sh>}
dir=$(mktemp -d /tmp/settle-fresh-start-XXXXXX)
trap '"$script" stop "$dir"' EXIT

"$script" start "$dir"
psql "$("$script" conninfo "$dir")" -qAt -c "CREATE TABLE left_behind (id INTEGER)"
"$script" start "$dir"   # the earlier run never stopped its server
found=$(psql "$("$script" conninfo "$dir")" -qAt \
  -c "SELECT count(*) FROM pg_class WHERE relname = 'left_behind'")
if [[ "$found" != 0 ]]; then
  echo "fresh_start: the second start kept the first run's table" >&2
  exit 1
fi
