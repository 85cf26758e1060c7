# make run | make test | make lint   (make help lists them)
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help run lock test fault-test bench bench-smoke screenshots lint format

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

run:  ## start API + worker on SQLite and a Redis of its own; restarts what dies, Ctrl-C stops all
	scripts/run.sh

# Every install takes the versions constraints.txt locks; make lock refreshes it.
$(VENV)/.installed-test: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $@

# The benchmark's extra (matplotlib for its plots, py-spy for --profile) on top of the tests'.
$(VENV)/.installed-bench: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test,bench]"
	touch $@ $(VENV)/.installed-test

lock: $(VENV)/.installed-test  ## move constraints.txt to the newest releases pyproject.toml allows, then run the suite on them
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip compile --quiet --upgrade --all-extras --universal --python-version 3.11 \
		--custom-compile-command "make lock" --output-file constraints.txt pyproject.toml
	$(MAKE) test

test: $(VENV)/.installed-test  ## run the test suite (starts its own Redis; the console's needs chromium)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

fault-test: $(VENV)/.installed-test  ## kill a worker and restart Redis mid-run (docs/operations.md)
	$(VENV)/bin/pytest -m fault -s tests/fault

bench: $(VENV)/.installed-bench  ## the benchmark, beside the machine's ceilings (docs/performance.md)
	$(PY) -m bench

bench-smoke: $(VENV)/.installed-bench  ## a short run of every benchmark stage, as in CI
	$(PY) -m bench --smoke

screenshots: $(VENV)/.installed-test  ## retake docs/images/console-*.png (needs Debian's chromium)
	STOREHOOKS_SCREENSHOTS=docs/images $(VENV)/bin/pytest tests/console -k screenshots

lint: $(VENV)/.installed-test  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.installed-test  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
