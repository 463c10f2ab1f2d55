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

.PHONY: help run test venv lint lock

help:
	@echo "make run   - create .venv, install, migrate the SQLite database, serve on $(HOST):$(PORT)"
	@echo "make test  - create .venv, install with dev extras, lint, type-check, test on SQLite and PostgreSQL"
	@echo "make lock  - regenerate requirements.lock and requirements-dev.lock (UPGRADE=--upgrade)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

# Install the locked, hash-checked dependencies, then the package itself without resolving
# anything; again only when a lock or pyproject.toml changed (a stamp file).
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

run: $(VENV)/.installed
	$(BIN)/screening db upgrade
	$(BIN)/screening serve --host $(HOST) --port $(PORT)

$(VENV)/.installed-dev: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@ $(VENV)/.installed

# Regenerate the locks from pyproject.toml, keeping current pins where they still fit;
# `make lock UPGRADE=--upgrade` (or UPGRADE="--upgrade-package NAME") moves them on.
UV_VERSION ?= 0.13.10
UPGRADE ?=
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet $(UPGRADE)
lock: | $(BIN)/python
	$(BIN)/pip install -q 'uv==$(UV_VERSION)'
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock

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
