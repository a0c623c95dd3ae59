# ledis-console: the targets the README names.
# PYTHON creates the project virtualenv; everything then runs from it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHON VENV
PORT ?= 6380
DATA ?= ./ledis-data

.PHONY: setup run cli test check lint typecheck bench fuzz format clean

setup:            ## install Debian and Python dependencies (idempotent)
	@./scripts/setup.sh

run: setup        ## start ledis-server on its defaults (127.0.0.1:6380, data in ./ledis-data)
	$(PY) -m stack.server.main --port $(PORT) --data-dir $(DATA)

cli: setup        ## open ledis-cli on the server that `make run` starts
	$(PY) -m console.cli.main -p $(PORT)

test: setup       ## run the whole test suite against real processes
	$(PY) -m pytest -q

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
fuzz: setup       ## the long fuzzing run (atheris targets + socket fuzzer); prints its figures
	$(PY) -m fuzz.run --minutes $(MINUTES)

clean:
	rm -rf .setup-stamp $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/results
