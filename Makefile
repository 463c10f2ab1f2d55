# The README's two commands: `make run` and `make test`. Only Python 3.11 is needed.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PG := postgresql+psycopg://postgres@127.0.0.1:5432
TEST_DB := screening_test
CHECK_DB := screening_migration_check
# pytest-xdist workers: one per core by default; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto

.PHONY: help run test venv lint

help:
	@echo "make run   - create .venv, install, migrate the SQLite database, serve on $(HOST):$(PORT)"
	@echo "make test  - create .venv, install with dev extras, lint, type-check, test on SQLite and PostgreSQL"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

# Install again only when pyproject.toml changed (a stamp file), not on every `make run`.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

run: $(VENV)/.installed
	$(BIN)/screening db upgrade
	$(BIN)/screening serve --host $(HOST) --port $(PORT)

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python scripts/ensure_postgres.py $(TEST_DB) $(CHECK_DB)
	$(BIN)/python scripts/ensure_chromium.py
	SCREENING_TEST_POSTGRES_URL=$(PG)/$(TEST_DB) SCREENING_TEST_REQUIRE_POSTGRES=1 \
		$(BIN)/python -m pytest -n $(TEST_WORKERS) --cov --cov-report=
	$(BIN)/coverage report --fail-under=90
	SCREENING_DATABASE_URL=$(PG)/$(CHECK_DB) $(BIN)/screening db upgrade
	SCREENING_DATABASE_URL=$(PG)/$(CHECK_DB) $(BIN)/alembic check
	for pack in rules/*/; do $(BIN)/screening rules check "$$pack"; done
	@echo "make test: all checks passed"
