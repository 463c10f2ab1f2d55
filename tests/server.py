"""Real `screening serve` processes and scratch PostgreSQL databases for end-to-end tests.

The server's standard output and error go to files (a pipe nobody reads would fill up and
block the server); tests read them back, e.g. to search the logs for canaries.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Clinic
from app.db.unit import session_scope
from tests.factories import AUDIT_KEY, DATA_KEY

POSTGRES_URL = os.environ.get("SCREENING_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("SCREENING_TEST_REQUIRE_POSTGRES") == "1"


@dataclass(frozen=True)
class Server:
    url: str
    database_url: str
    stdout: Path
    stderr: Path

    def logs(self) -> bytes:
        return self.stdout.read_bytes() + self.stderr.read_bytes()


def postgres_url_or_fail() -> str:
    """The test server's URL; a failure under SCREENING_TEST_REQUIRE_POSTGRES=1."""
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail(
                "SCREENING_TEST_REQUIRE_POSTGRES=1 but SCREENING_TEST_POSTGRES_URL is unset"
            )
        pytest.skip("PostgreSQL-only test: set SCREENING_TEST_POSTGRES_URL")
    return POSTGRES_URL


@contextmanager
def scratch_postgres(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (committed to for real), dropped afterwards."""
    name = f"{prefix}_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        make_url(postgres_url_or_fail()).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrated_with_key(database_url: str, clinic_name: str = "Server clinic") -> str:
    """Upgrade the database to head and create a clinic (with a phone) and an API key for it."""
    migrate.upgrade(migrate.make_config(database_url=database_url))
    engine = make_engine(database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        created = apikey_service.create(
            session, clinic_name=clinic_name, actor=audit_service.Actor.cli(), now=datetime.now(UTC)
        )
        # A clinic needs a phone number to invite patients (the form says whom to call).
        session.get_one(Clinic, created.clinic_id).phone = "+1 555 0100"
        key = created.key
    engine.dispose()
    return key


def server_env(database_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `screening` process: test mode, the test keys, this database."""
    return (
        os.environ
        | {
            "SCREENING_ENVIRONMENT": "test",
            "SCREENING_DATABASE_URL": database_url,
            "SCREENING_DATA_KEY": DATA_KEY,
            "SCREENING_AUDIT_KEY": AUDIT_KEY,
            "SCREENING_SECRETS_FILE": str(workdir / "secrets.env"),
            "SCREENING_LOG_LEVEL": "INFO",
            # load and fault tests send far more than one key's default rate (a test may
            # pass its own limits in ``extra``)
            "SCREENING_RATE_LIMIT_PER_SECOND": "100000",
            "SCREENING_RATE_LIMIT_BURST": "100000",
        }
        | extra
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    database_url: str, workdir: Path, *, workers: int = 1, **env: str
) -> Iterator[Server]:
    """Run `python -m app serve` until the block ends; fail if not ready within 60 s."""
    port = _free_port()
    server = Server(
        f"http://127.0.0.1:{port}", database_url, workdir / "server.out", workdir / "server.err"
    )
    command = [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", str(workers)]
    with server.stdout.open("wb") as out, server.stderr.open("wb") as err:
        process = subprocess.Popen(
            command,
            env=server_env(database_url, workdir, **env),
            cwd=workdir,
            stdout=out,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"the server did not become ready:\n{server.logs().decode()[-3000:]}")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
