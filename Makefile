# The two commands of the README: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

## Start the control plane with the demo scenario on embedded SQLite.
demo: $(VENV)/.installed
	$(BIN)/neocloud demo $(ARGS)

## Run the whole test suite: lint, format check, type check, tests on SQLite and PostgreSQL.
test: $(VENV)/.installed-dev
	bash scripts/ensure-services
	$(MAKE) --no-print-directory lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -n 2 -m "not slow" $(PYTEST_ARGS)

## The benchmarks (each prints one JSON object; about 16 minutes on 2 cores).
bench: $(VENV)/.installed-dev
	bash scripts/ensure-services
	$(BIN)/python bench/fleet_apply.py
	$(BIN)/python bench/capacity.py
	$(BIN)/python bench/placement.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/plan.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/console.py

clean:
	rm -rf $(VENV) .neocloud .mypy_cache .ruff_cache .pytest_cache
