#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks.
#
#   scripts/postgres.sh start DIR     initdb into DIR, then start the server; a server
#                                     left running there (a test run stopped early) is
#                                     stopped and its data thrown away first
#   scripts/postgres.sh restart DIR   pg_ctl restart -m fast (the fault tests use it)
#   scripts/postgres.sh stop DIR      stop it (immediately) and remove DIR
#   scripts/postgres.sh conninfo DIR  print the libpq connection string
#
# The server listens only on a Unix socket inside DIR (no TCP port, so two
# builds never collide), trusts local connections, and runs with fsync off:
# its data is thrown away. initdb and postgres refuse to run as root, so as
# root they run as the user `nobody`, which then owns DIR.
set -euo pipefail

command=${1:?usage: postgres.sh start|restart|stop|conninfo DIR}
dir=$(realpath -m -- "${2:?usage: postgres.sh start|restart|stop|conninfo DIR}")
if [[ "$dir" == *"'"* ]]; then
  echo "postgres.sh: the directory must not contain a single quote: $dir" >&2
  exit 2
fi

bindir=$(pg_config --bindir 2>/dev/null || true)
if [[ ! -x "$bindir/pg_ctl" ]]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [[ ! -x "$bindir/pg_ctl" ]]; then
  echo "postgres.sh: no PostgreSQL server found (install the postgresql package)" >&2
  exit 1
fi

as_server() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u nobody -- "$@")
  else
    "$@"
  fi
}

pg_ctl() {
  as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" "$@"
}

case "$command" in
  start)
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then
      chown nobody "$dir"
    fi
    if [[ -f "$dir/data/PG_VERSION" ]]; then
      pg_ctl stop -m immediate >/dev/null 2>&1 || true
      rm -rf "$dir/data"
    fi
    as_server "$bindir/initdb" -D "$dir/data" -U settle --auth=trust -E UTF8 --no-locale \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    pg_ctl start -w -t 60 \
      -o "-k '$dir' -c listen_addresses= -c fsync=off -c full_page_writes=off -c max_connections=200" \
      >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    ;;
  restart)
    pg_ctl restart -w -t 60 -m fast >/dev/null
    ;;
  stop)
    if [[ -f "$dir/data/PG_VERSION" ]]; then
      pg_ctl stop -w -m immediate >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  conninfo)
    echo "host='$dir' user=settle dbname=postgres"
    ;;
  *)
    echo "postgres.sh: unknown command $command" >&2
    exit 2
    ;;
esac
