#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on 127.0.0.1 (Debian's postgresql package,
# run as the postgres user, data in a temp dir, fsync off) and prints the
# STOREHOOKS_TEST_DATABASE_URL for it. `scripts/throwaway_postgres.sh stop DIR` stops it.
#   eval "$(scripts/throwaway_postgres.sh)"   # sets STOREHOOKS_TEST_DATABASE_URL and PG_DIR
set -euo pipefail

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pgbin" ] || { echo "no PostgreSQL server: apt-get install postgresql" >&2; exit 1; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "${1:-start}" = stop ]; then
  as_postgres "$pgbin/pg_ctl" -D "$2/data" -m immediate stop >/dev/null
  rm -rf "$2"
  exit 0
fi

port=${PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
dir=$(mktemp -d /tmp/storehooks-pg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
as_postgres "$pgbin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log"
as_postgres "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null
echo "export STOREHOOKS_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
echo "export PG_DIR=$dir"
