"""Issue 15, faults: a SQLite database locked by another process gives 503, not a stall.

Another process (here, the test) holds SQLite's write lock. A screening write then waits in a
worker thread, never on the event loop, so the server keeps answering (`/healthz` at once);
when the lock is not released within the busy timeout, the write is a 503 problem+json with
`Retry-After`, never a 500. Once the lock is gone, the same request is stored.
"""

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
from sqlalchemy import make_url

from tests.faults.support import PROBLEM_JSON, ServerProcess, assert_whole, stored, submit
from tests.server import migrated_with_key


async def _write_while_locked(
    url: str, api_key: str, holder: sqlite3.Connection
) -> tuple[float, int, dict[str, str], bytes]:
    """Lock the database, start a write, time /healthz while it waits; both outcomes.

    A first write warms the key and rule-pack caches, so the locked write goes straight to
    the writer (on SQLite, the event loop's) instead of waiting in a lookup's own session.
    """
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        assert (await submit(http, api_key, "busy-0")).status == 201
        holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
        write = asyncio.create_task(submit(http, api_key, "busy-1"))
        await asyncio.sleep(1)  # the write is waiting for the lock by now
        started = time.monotonic()
        health = await http.get("/healthz")
        health_s = time.monotonic() - started
        assert health.status_code == 200
        outcome = await write
    assert outcome.status is not None
    return health_s, outcome.status, outcome.headers, outcome.body


def test_locked_sqlite_database_gives_503_without_stalling_the_server(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    database_url = f"sqlite:///{tmp_path / 'busy.db'}"
    api_key = migrated_with_key(database_url)
    server = ServerProcess(database_url, tmp_path)
    holder = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    try:
        server.start()
        health_s, status, headers, body = asyncio.run(
            _write_while_locked(server.url, api_key, holder)
        )
        holder.execute("ROLLBACK")
        after = asyncio.run(_submit_once(server.url, api_key))
    finally:
        holder.close()
        server.stop()

    assert health_s < 10, "the event loop waited for SQLite's lock"
    assert status == 503
    assert headers["content-type"] == PROBLEM_JSON
    assert headers["retry-after"] == "5"
    assert b"Traceback" not in body
    assert b"sqlite" not in body.lower()
    assert after == 201
    state = stored(database_url)
    assert len(state.screening_ids) == 2
    assert_whole(state)
    print(f"/healthz {health_s:.2f} s while the write waited; {time.monotonic() - started:.1f} s")


async def _submit_once(url: str, api_key: str) -> int | None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        return (await submit(http, api_key, "busy-1")).status
