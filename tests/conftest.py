"""Backends, engine, per-test transaction, app client.

Tests using ``session``, ``client`` or ``engine`` run on SQLite and, when
``SCREENING_TEST_POSTGRES_URL`` is set, on PostgreSQL too. ``SCREENING_TEST_REQUIRE_POSTGRES=1``
(set by ``make test`` / ``.ci/run``) turns a missing PostgreSQL into a failure. The schema is
built once per backend by ``alembic upgrade head``. Each test runs in an outer transaction
that is rolled back; the app commits into savepoints (``join_transaction_mode``).
"""

import copy
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.engine import Ruleset
from app.main import create_app, load_checked_ruleset
from app.settings import Settings, default_rules_path
from tests.databases import create_postgres_database, drop_postgres_database
from tests.factories import AUDIT_KEY, DATA_KEY, FixedClock
from tests.openapi_check import ResponseCheck

POSTGRES_URL = os.environ.get("SCREENING_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("SCREENING_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL or REQUIRE_POSTGRES else [])]


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "data_keys": DATA_KEY,
        "audit_key": AUDIT_KEY,
        "rules_path": default_rules_path(),
        "secrets_file": Path("/nonexistent/screening-secrets.env"),
    }
    return Settings(_env_file=None, **(values | overrides))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgresql" and not POSTGRES_URL:
        pytest.fail("SCREENING_TEST_REQUIRE_POSTGRES=1 but SCREENING_TEST_POSTGRES_URL is unset")
    return name


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database that tests may commit to (migrations, real servers)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"screening_scratch_{uuid.uuid4().hex[:12]}"
    url = create_postgres_database(POSTGRES_URL, name)
    yield url
    drop_postgres_database(POSTGRES_URL, name)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The shared test database of this backend, at the migrations' head."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        name = make_url(POSTGRES_URL).database or "screening_test"
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # each xdist worker: its own database
        url = create_postgres_database(POSTGRES_URL, f"{name}_{worker}" if worker else name)
    migrate.upgrade(migrate.make_config(database_url=url))
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return make_sessionmaker(connection, join_transaction_mode="create_savepoint")


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """The test's own session: factories add and flush into the rolled-back transaction."""
    with session_factory() as session:
        yield session


@pytest.fixture(scope="session")
def ruleset() -> Ruleset:
    return load_checked_ruleset(default_rules_path())


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(scope="session")
def openapi_document(database_url: str, ruleset: Ruleset) -> dict[str, Any]:
    """The document of every ``app`` of the test settings, built once (most of a test's cost)."""
    return create_app(make_settings(database_url), ruleset=ruleset).openapi()


@pytest.fixture
def app(
    database_url: str,
    session_factory: sessionmaker[Session],
    ruleset: Ruleset,
    clock: FixedClock,
    openapi_document: dict[str, Any],
) -> FastAPI:
    settings = make_settings(database_url)
    app = create_app(settings, sessionmaker=session_factory, clock=clock, ruleset=ruleset)
    app.openapi_schema = copy.deepcopy(openapi_document)
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        client.event_hooks["response"].append(ResponseCheck(app))  # tests/openapi_check.py
        yield client
