"""Against a real `screening serve` process: readiness and 20 concurrent duplicate submits."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from threading import Barrier

import httpx
import pytest
from sqlalchemy import func, select

from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Screening
from app.db.session import session_scope
from tests.factories import AUDIT_KEY, CANDIDATE_ANSWERS, DATA_KEY


@dataclass(frozen=True)
class Server:
    url: str
    key: str
    database_url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(empty_database_url: str, tmp_path: Path) -> Iterator[Server]:
    migrate.upgrade(migrate.make_config(database_url=empty_database_url))
    engine = make_engine(empty_database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        key = apikey_service.create(
            session,
            clinic_name="Server clinic",
            actor=audit_service.Actor.cli(),
            now=datetime.now(UTC),
        ).key
    engine.dispose()
    port = _free_port()
    env = os.environ | {
        "SCREENING_ENVIRONMENT": "test",
        "SCREENING_DATABASE_URL": empty_database_url,
        "SCREENING_DATA_KEY": DATA_KEY,
        "SCREENING_AUDIT_KEY": AUDIT_KEY,
        "SCREENING_SECRETS_FILE": str(tmp_path / "secrets.env"),
        "SCREENING_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)], env=env, cwd=tmp_path
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not become ready within 30 s")
        yield Server(url, key, empty_database_url)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _screening_count(database_url: str) -> int:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        total = connection.scalar(select(func.count()).select_from(Screening)) or 0
    engine.dispose()
    return total


def test_twenty_concurrent_duplicates_store_one_screening(server: Server) -> None:
    body = {
        "questionnaire": "ketamine-infusion-candidacy",
        "subject": {"reference": "MRN-7"},
        "answers": CANDIDATE_ANSWERS,
    }
    headers = {"Authorization": f"Bearer {server.key}", "Idempotency-Key": "same-request"}
    barrier = Barrier(20)

    def submit(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            barrier.wait()
            return http.post("/v1/screenings", json=body, headers=headers)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(submit, range(20)))
    assert [response.status_code for response in responses] == [201] * 20
    assert len({response.content for response in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert _screening_count(server.database_url) == 1


def test_real_server_serves_readyz_and_openapi(server: Server) -> None:
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}
    assert httpx.get(f"{server.url}/openapi.json").json()["info"]["title"]
    response = httpx.get(
        f"{server.url}/v1/screenings", headers={"Authorization": f"Bearer {server.key}"}
    )
    assert response.json() == {"items": [], "next_cursor": None}
