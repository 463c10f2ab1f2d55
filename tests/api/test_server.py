"""Against a real `screening serve` process: readiness and 20 concurrent duplicate submits."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import Barrier

import httpx
import pytest
from sqlalchemy import func, select

from app.db.engine import make_engine
from app.db.models import Screening
from tests.factories import CANDIDATE_ANSWERS
from tests.server import migrated_with_key, running_server


@dataclass(frozen=True)
class Server:
    url: str
    key: str
    database_url: str


@pytest.fixture
def server(empty_database_url: str, tmp_path: Path) -> Iterator[Server]:
    key = migrated_with_key(empty_database_url)
    with running_server(empty_database_url, tmp_path) as running:
        yield Server(running.url, key, empty_database_url)


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
