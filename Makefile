# ledis-console: the targets the README names.
# PYTHON creates the project virtualenv; everything then runs from it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHON VENV
PORT ?= 6380
DATA ?= ./ledis-data
RUN_DIR ?= ./ledis-run
PORT_BASE ?= 7000

.PHONY: setup run stop server cli test check lint typecheck bench fuzz format clean

setup:            ## install Debian and Python dependencies (idempotent)
	@./scripts/setup.sh

run: setup        ## start the local cluster (etcd, 2 groups of master + replica, a proxy) and open the dashboard on it
	$(PY) -m console.main up --detach --run-dir $(RUN_DIR) --port-base $(PORT_BASE)
	$(PY) -m console.main --config $(RUN_DIR)/ledis-console.toml

stop:             ## stop the local cluster that `make run` started (its data stays in $(RUN_DIR))
	$(PY) -m console.main down --run-dir $(RUN_DIR)

server: setup     ## one ledis-server on its defaults (127.0.0.1:6380, data in ./ledis-data)
	$(PY) -m stack.server.main --port $(PORT) --data-dir $(DATA)

cli: setup        ## open ledis-cli on the server that `make server` starts
	$(PY) -m console.cli.main -p $(PORT)

test: setup       ## run the whole test suite against real processes (two workers: pytest-xdist)
	$(PY) -m pytest -q -n 2 --durations=15

lint: setup
	$(PY) -m ruff check stack console tests bench fuzz
	$(PY) -m ruff format --check stack console fuzz

typecheck: setup
	$(PY) -m mypy

check: lint typecheck test   ## lint, type-check and test

format:
	$(PY) -m ruff format stack console fuzz
	$(PY) -m ruff check --fix stack console fuzz

bench: setup      ## ledis-server vs redis-server (redis-benchmark, ratios); ledis-cli latency; ledis-proxy vs direct
	$(PY) -m bench.server_bench
	$(PY) -m bench.cli_bench
	$(PY) -m bench.proxy_bench

MINUTES ?= 30
fuzz: setup       ## the long fuzzing run (atheris targets, socket fuzzer on a server and through a proxy); prints its figures
	$(PY) -m fuzz.run --minutes $(MINUTES)

clean:
	rm -rf .setup-stamp $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/results
