#!/usr/bin/env bash
# Starts (or stops) a throwaway PostgreSQL cluster on 127.0.0.1 for the PostgreSQL tests, and prints
# the variable that makes `swift test` use it instead of starting its own.
#   Scripts/postgres-test-cluster.sh start [DIR]   # default DIR: /tmp/fieldsync-test-cluster
#   Scripts/postgres-test-cluster.sh stop [DIR]
set -euo pipefail
action=${1:-start}
dir=${2:-/tmp/fieldsync-test-cluster}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed: apt-get install postgresql-15" >&2; exit 1; }
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
case "$action" in
  start)
    port=${PGPORT_TEST:-55432}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    [ -d "$dir/data" ] || "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U fieldsync -A trust --no-sync -E UTF8 --locale=C >/dev/null
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -c fsync=off -c unix_socket_directories=$dir -c max_connections=200" start >/dev/null
    echo "export FIELDSYNC_TEST_POSTGRES=postgres://fieldsync@127.0.0.1:$port/postgres?sslmode=disable"
    ;;
  stop)
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null && rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
