#!/usr/bin/env bash
# A throwaway Redis server for the tests and benchmarks.
#
#   scripts/redis.sh start DIR     start a server on the Unix socket DIR/redis.sock
#   scripts/redis.sh restart DIR   shut it down, saving its data, and start it again
#                                  (the broker tests restart it under their processes)
#   scripts/redis.sh stop DIR      stop it (without saving) and remove DIR
#   scripts/redis.sh socket DIR    print the socket's path
#
# No TCP port (port 0), so two builds never collide, and no persistence
# (--save '' --appendonly no): its data is thrown away. restart alone saves
# once (SHUTDOWN SAVE) and the new server loads that file, so a restart loses
# nothing, as with a server that persists. redis-server would run as root,
# but a test server has no business holding root's rights: as root it runs as
# `nobody`, which then owns DIR, like the PostgreSQL test server.
set -euo pipefail

command=${1:?usage: redis.sh start|restart|stop|socket DIR}
dir=$(realpath -m -- "${2:?usage: redis.sh start|restart|stop|socket DIR}")
socket="$dir/redis.sock"

server=$(command -v redis-server || true)
cli=$(command -v redis-cli || true)
if [[ -z "$server" || -z "$cli" ]]; then
  echo "redis.sh: no redis-server or redis-cli found (install the redis-server package)" >&2
  exit 1
fi

as_server() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u nobody -- "$@")
  else
    "$@"
  fi
}

start() {
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    chown nobody "$dir"
  fi
  rm -f "$socket"
  as_server "$server" --port 0 --unixsocket "$socket" --unixsocketperm 777 \
    --save '' --appendonly no --dir "$dir" --dbfilename dump.rdb \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/server.log"
  for _ in $(seq 1 300); do
    if [[ -S "$socket" ]] && "$cli" -s "$socket" ping 2>/dev/null | grep -q PONG; then
      return 0
    fi
    sleep 0.1
  done
  echo "redis.sh: the server did not answer on $socket" >&2
  cat "$dir/server.log" >&2 || true
  exit 1
}

# Waits until the server whose pid file is in DIR is gone.
wait_gone() {
  local pid
  pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
  for _ in $(seq 1 300); do
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

case "$command" in
  start)
    if [[ -S "$socket" ]]; then
      "$cli" -s "$socket" shutdown nosave >/dev/null 2>&1 || true
      wait_gone
    fi
    rm -f "$dir/dump.rdb"
    start
    ;;
  restart)
    "$cli" -s "$socket" shutdown save >/dev/null 2>&1 || true
    wait_gone
    start
    ;;
  stop)
    if [[ -S "$socket" ]]; then
      "$cli" -s "$socket" shutdown nosave >/dev/null 2>&1 || true
      wait_gone
    fi
    rm -rf "$dir"
    ;;
  socket)
    echo "$socket"
    ;;
  *)
    echo "redis.sh: unknown command $command" >&2
    exit 2
    ;;
esac
