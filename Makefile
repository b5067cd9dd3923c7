# Two commands do everything on a fresh machine with Python 3.11+:
#   make verify   set up, then verify the reference backend and print the conformance table
#   make test     set up, then run the whole test suite (lint, types, tests, notebooks)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup verify test lint clean

$(BIN)/sessionspec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/sessionspec

verify: setup
	$(BIN)/sessionspec verify sessionspec.reference:FileSessionStorage

lint: setup
	$(BIN)/ruff check sessionspec tests adapters benchmarks examples
	$(BIN)/ruff format --check sessionspec tests adapters benchmarks examples
	$(BIN)/mypy
	$(BIN)/mypy --strict adapters/node_install.py examples/backends/sqlite_storage.py examples/backends/redis_storage.py benchmarks/perf.py benchmarks/render.py benchmarks/shared_workload.py benchmarks/sqlite_transactions.py

# --dist loadgroup: tests/test_wheel.py shares one build and one install in one xdist group.
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=25

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info build dist
