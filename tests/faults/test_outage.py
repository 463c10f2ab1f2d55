"""Issue 15, faults: PostgreSQL unreachable for 10 s under load, then back.

A TCP proxy sits between a real server process and the machine's PostgreSQL (which is shared
and must not be stopped): it drops every connection and refuses new ones for 10 s. Meanwhile
`/readyz` is 503 and writes get a 503 problem+json with `Retry-After`, never a 500 or a
traceback; afterwards the same process recovers on its own, every request retried with its
Idempotency-Key is stored exactly once, nothing is half-written and the chain verifies.
"""

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from tests.faults.proxy import DatabaseProxy, database_proxy
from tests.faults.support import (
    PROBLEM_JSON,
    Outcome,
    ServerProcess,
    assert_whole,
    audit_verify,
    stored,
    submit,
    submit_all,
)
from tests.server import migrated_with_key, scratch_postgres

OUTAGE_S = 10
WRITERS = 8


@dataclass
class Timeline:
    writes: list[Outcome] = field(default_factory=list)
    probes: list[tuple[float, int, str]] = field(default_factory=list)  # start, status, type
    cut_at: float = 0.0
    restored_at: float = 0.0
    ready_again_at: float | None = None


async def _traffic(server: ServerProcess, api_key: str, proxy: DatabaseProxy) -> Timeline:
    """Writers and a readiness probe run throughout; the database goes away for 10 s."""
    timeline, done, numbers = Timeline(), asyncio.Event(), itertools.count()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:

        async def write() -> None:
            while not done.is_set():
                timeline.writes.append(await submit(http, api_key, f"outage-{next(numbers)}"))
                await asyncio.sleep(0.05)

        async def probe() -> None:
            while not done.is_set():
                started = time.monotonic()
                response = await http.get("/readyz")
                timeline.probes.append(
                    (started, response.status_code, response.headers["content-type"])
                )
                if (
                    response.status_code == 200
                    and timeline.restored_at
                    and started > timeline.restored_at
                ):
                    timeline.ready_again_at = timeline.ready_again_at or started
                await asyncio.sleep(0.25)

        tasks = [asyncio.create_task(write()) for _ in range(WRITERS)]
        tasks.append(asyncio.create_task(probe()))
        await asyncio.sleep(3)
        timeline.cut_at = time.monotonic()
        proxy.cut()
        await asyncio.sleep(OUTAGE_S)
        timeline.restored_at = time.monotonic()
        proxy.restore()
        deadline = time.monotonic() + 60
        while timeline.ready_again_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        await asyncio.sleep(3)  # traffic after the recovery
        done.set()
        await asyncio.gather(*tasks)
    return timeline


@pytest.fixture
def database_url() -> Iterator[str]:
    with scratch_postgres("outage") as url:
        yield url


def _assert_unavailable(outcome: Outcome) -> None:
    """A 503 problem+json with Retry-After, naming nothing of the failure's internals."""
    assert outcome.headers["content-type"] == PROBLEM_JSON
    assert outcome.headers["retry-after"] == "5"
    problem = httpx.Response(503, content=outcome.body).json()
    assert problem["type"] == "urn:problem-type:screening:service-unavailable"
    assert problem["status"] == 503
    for leak in (b"Traceback", b"psycopg", b"OperationalError", b"SELECT", b"INSERT"):
        assert leak not in outcome.body


def test_database_outage_gives_503_and_recovers_without_restart(
    database_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    api_key = migrated_with_key(database_url)
    direct = make_url(database_url)
    with database_proxy(direct.host or "127.0.0.1", direct.port or 5432) as proxy:
        proxied = direct.set(host="127.0.0.1", port=proxy.port)
        server = ServerProcess(proxied.render_as_string(hide_password=False), tmp_path)
        try:
            server.start()
            document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
            timeline = asyncio.run(_traffic(server, api_key, proxy))
            assert server.process is not None
            assert server.process.poll() is None
            failed = [o.key for o in timeline.writes if o.status != 201]
            retried = asyncio.run(submit_all(server.url, api_key, failed, concurrency=8))
        finally:
            server.stop()
        logs = server.logs()

    statuses = {o.status for o in timeline.writes}
    assert statuses <= {201, 503}, statuses  # never a 500, never a dropped connection
    cut, restored = timeline.cut_at, timeline.restored_at
    during = [
        o for o in timeline.writes if o.started > cut + 1 and o.started + o.elapsed < restored
    ]
    assert len(during) >= WRITERS, "requests hung instead of failing fast"
    assert {o.status for o in during} == {503}
    for outcome in timeline.writes:
        if outcome.status == 503:
            _assert_unavailable(outcome)
    declared = document["paths"]["/v1/screenings"]["post"]["responses"]["503"]
    assert PROBLEM_JSON in declared["content"]
    assert "Retry-After" in declared["headers"]
    readiness = document["paths"]["/readyz"]["get"]["responses"]["503"]["content"]
    down = [p for p in timeline.probes if cut + 2 < p[0] < restored - 1]
    assert down
    assert {status for _, status, _ in down} == {503}
    assert {kind.split(";")[0] for _, _, kind in down} <= set(readiness)

    assert timeline.ready_again_at is not None, "not ready again within 60 s of the restore"
    after = [o for o in timeline.writes if o.started > timeline.ready_again_at + 1]
    assert after
    assert {o.status for o in after} == {201}
    assert {o.status for o in retried} == {201}
    final = {o.key: o.screening_id() for o in timeline.writes if o.status == 201}
    final |= {o.key: o.screening_id() for o in retried}
    state = stored(database_url)
    assert sorted(state.screening_ids) == sorted(final.values())
    assert_whole(state)
    audit_verify(database_url, tmp_path)
    assert b"Traceback" not in logs
    print(
        f"writes {len(timeline.writes)} ({len(during)} during the outage, all 503; "
        f"max {max(o.elapsed for o in during):.2f} s), ready again "
        f"{timeline.ready_again_at - restored:.1f} s after the restore, "
        f"{time.monotonic() - started:.1f} s"
    )
