"""4 worker processes, 50 clients, 2,000 submissions on PostgreSQL: no lost, doubled or forked rows.

Issue 4, acceptance "Concurrency": every acknowledged screening is stored exactly once,
repeated Idempotency-Keys replay the first screening, the audit trail holds exactly the
events the requests imply, its sequence has no gaps, and `screening audit verify` passes.
"""

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import local
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.db.engine import make_engine
from app.db.models import AuditEvent, AuditHead, IdempotencyKey, Screening
from tests.factories import CANDIDATE_ANSWERS, NEEDS_REVIEW_ANSWERS
from tests.server import Server, migrated_with_key, running_server, scratch_postgres, server_env

SUBMISSIONS = 2_000
CLIENTS = 50
WORKERS = 4


def plan() -> list[str | None]:
    """The Idempotency-Key of each submission: a quarter unkeyed, 500 keys sent twice.

    Duplicates are adjacent so they race each other across workers.
    """
    keys: list[str | None] = []
    for i in range(SUBMISSIONS // 4):
        keys += [None, f"once-{i}", f"twice-{i}", f"twice-{i}"]
    return keys


def body_for(index: int, key: str | None) -> dict[str, Any]:
    # A retry must send the same body, so the body of a keyed request depends on its key only.
    seed = key or f"unkeyed-{index}"
    return {
        "questionnaire": "ketamine-infusion-candidacy",
        "subject": {"reference": f"REF-{seed}"},
        "answers": NEEDS_REVIEW_ANSWERS if hash(seed) % 2 else CANDIDATE_ANSWERS,
    }


def started_workers(server: Server) -> int:
    """Worker processes that finished startup (uvicorn logs it as JSON with their pid)."""
    deadline = time.monotonic() + 30
    while True:
        lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith(b"{")]
        pids = {line["pid"] for line in lines if line["message"] == "Application startup complete."}
        if len(pids) >= WORKERS or time.monotonic() > deadline:
            return len(pids)
        time.sleep(0.2)


@pytest.fixture
def database_url() -> Iterator[str]:
    with scratch_postgres("concurrency") as url:
        yield url


def _event_actions(database_url: str) -> Counter[str]:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(AuditEvent.action, func.count()).group_by("action"))
        counts = Counter({str(action): int(n) for action, n in rows})
    engine.dispose()
    return counts


def test_concurrent_submissions_are_stored_once_and_audited_gaplessly(
    database_url: str, tmp_path: Path
) -> None:
    key = migrated_with_key(database_url)
    before = _event_actions(database_url)
    keys = plan()
    threads = local()
    clients: list[httpx.Client] = []

    def submit(index: int) -> tuple[int, str | None, int, bytes]:
        if not hasattr(threads, "http"):
            threads.http = httpx.Client(base_url=server.url, timeout=60)
            clients.append(threads.http)  # list.append is atomic
        headers = {"Authorization": f"Bearer {key}"}
        if keys[index] is not None:
            headers["Idempotency-Key"] = str(keys[index])
        response = threads.http.post(
            "/v1/screenings", json=body_for(index, keys[index]), headers=headers
        )
        return index, keys[index], response.status_code, response.content

    with running_server(database_url, tmp_path, workers=WORKERS) as server:
        assert started_workers(server) == WORKERS
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(CLIENTS) as pool:
                results = list(pool.map(submit, range(SUBMISSIONS)))
        finally:
            for http in clients:
                http.close()
        elapsed = time.monotonic() - started
    access = [json.loads(line) for line in server.logs().splitlines() if b'"app.access"' in line]
    served_by = len({line["pid"] for line in access if line["route"] == "/v1/screenings"})
    print(f"{SUBMISSIONS} submissions, {CLIENTS} clients, {WORKERS} workers: {elapsed:.1f} s")
    print(f"workers that served submissions: {served_by}")

    assert Counter(status for _, _, status, _ in results) == {201: SUBMISSIONS}
    # One JSON access line per request, each with the pid of the worker that served it.
    posts = [line for line in access if line["route"] == "/v1/screenings"]
    assert len(posts) == SUBMISSIONS
    acknowledged: dict[str, set[str]] = {}
    for index, idem, _, content in results:
        acknowledged.setdefault(idem or f"unkeyed-{index}", set()).add(
            httpx.Response(201, content=content).json()["id"]
        )
    # Every repeat of a key got the first screening back, byte for byte the same id.
    assert all(len(ids) == 1 for ids in acknowledged.values())
    ids = {next(iter(ids)) for ids in acknowledged.values()}
    unkeyed = sum(1 for k in keys if k is None)
    distinct_keys = len({k for k in keys if k is not None})
    assert len(ids) == distinct_keys + unkeyed == 1_500

    engine = make_engine(database_url)
    with engine.connect() as connection:
        stored = [str(i) for i in connection.scalars(select(Screening.id))]
        idempotency_rows = connection.scalar(select(func.count()).select_from(IdempotencyKey))
        seqs = list(connection.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        head = connection.scalar(select(AuditHead.seq))
    engine.dispose()
    assert sorted(stored) == sorted(ids)
    assert idempotency_rows == distinct_keys
    assert seqs == list(range(1, len(seqs) + 1))
    assert head == len(seqs)

    replays = SUBMISSIONS - len(ids)
    assert _event_actions(database_url) == before + Counter(
        # Four workers start at once: the pack, its translations and the clinic's pinning to
        # it (issue 13) are each stored and audited exactly once.
        {
            "rule_pack.loaded": 1,
            "rule_pack.translations_stored": 1,
            "rule_pack.adopted": 1,
            "screening.created": len(ids),
            "screening.read": replays,
        }
    )
    verify = subprocess.run(
        [sys.executable, "-m", "app", "audit", "verify", "--json"],
        env=server_env(database_url, tmp_path),
        capture_output=True,
        check=False,
    )
    assert verify.returncode == 0, (verify.stdout + verify.stderr).decode()[-3000:]
    assert b'"ok": true' in verify.stdout
