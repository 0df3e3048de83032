#!/usr/bin/env bash
# A throwaway MariaDB (or MySQL) server for the tests and benchmarks.
#
#   scripts/mariadb.sh start DIR     mariadb-install-db into DIR (once), then start the server
#   scripts/mariadb.sh restart DIR   stop it (as a crash would: SIGKILL) and start it again
#   scripts/mariadb.sh stop DIR      stop it (SIGKILL: the data is thrown away) and remove DIR
#   scripts/mariadb.sh conninfo DIR  print the connection settings settle's tests read
#
# The server listens only on DIR/mysqld.sock (--skip-networking: no TCP port,
# so two builds never collide); the user `settle` connects without a password
# and owns the database `settle`. Commits reach the operating system, not the
# disk (innodb-flush-log-at-trx-commit=2, no doublewrite, small buffers): a
# killed server keeps every commit, a crashed machine would not; its data is
# thrown away. mariadbd refuses to
# run as root, so as root it runs as the user `nobody`, which then owns DIR.
set -euo pipefail

command=${1:?usage: mariadb.sh start|restart|stop|conninfo DIR}
dir=$(realpath -m -- "${2:?usage: mariadb.sh start|restart|stop|conninfo DIR}")
if [[ "$dir" =~ [[:space:]\'\"\;] ]]; then
  echo "mariadb.sh: the directory must not contain spaces, quotes or ';': $dir" >&2
  exit 2
fi

server=$(command -v mariadbd || command -v mysqld || true)
[[ -n "$server" ]] || server=$(ls /usr/sbin/mariadbd /usr/sbin/mysqld 2>/dev/null | head -n 1)
install_db=$(command -v mariadb-install-db || command -v mysql_install_db || true)
client=$(command -v mariadb || command -v mysql || true)
if [[ -z "$server" || -z "$install_db" || -z "$client" ]]; then
  echo "mariadb.sh: no MariaDB server found (install the mariadb-server package)" >&2
  exit 1
fi

socket="$dir/mysqld.sock"

as_server() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u nobody -- "$@")
  else
    "$@"
  fi
}

# Starts the server in the background and waits (up to 60 s) for its socket.
launch() {
  rm -f "$socket" "$dir/mysqld.pid"
  as_server "$server" --no-defaults --datadir="$dir/data" --socket="$socket" \
    --pid-file="$dir/mysqld.pid" --skip-networking --log-error="$dir/server.log" \
    --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
    --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 --sync-binlog=0 \
    --innodb-flush-method=nosync --skip-log-bin --max-connections=200 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
    --innodb-lock-wait-timeout=10 </dev/null >/dev/null 2>&1 &
  for _ in $(seq 600); do
    if "$client" --no-defaults --socket="$socket" -u root -e "SELECT 1" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  cat "$dir/server.log" >&2
  return 1
}

# Ends the server at once, as a crash would; InnoDB recovers on the next start.
kill_server() {
  if [[ -f "$dir/mysqld.pid" ]]; then
    local pid
    pid=$(cat "$dir/mysqld.pid")
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$dir/mysqld.pid"
  fi
}

case "$command" in
  start)
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then
      chown nobody "$dir"
    fi
    kill_server
    fresh=0
    if [[ ! -d "$dir/data/mysql" ]]; then
      as_server "$install_db" --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
      fresh=1
    fi
    launch
    if [[ $fresh -eq 1 ]]; then
      "$client" --no-defaults --socket="$socket" -u root -e \
        "CREATE DATABASE settle CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
         CREATE USER 'settle'@'localhost';
         GRANT ALL ON settle.* TO 'settle'@'localhost';
         GRANT PROCESS, CONNECTION ADMIN ON *.* TO 'settle'@'localhost';"
    fi
    ;;
  restart)
    kill_server
    launch
    ;;
  stop)
    kill_server
    rm -rf "$dir"
    ;;
  conninfo)
    echo "socket=$socket user=settle database=settle"
    ;;
  *)
    echo "mariadb.sh: unknown command $command" >&2
    exit 2
    ;;
esac
