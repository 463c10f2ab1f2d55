"""Issue 15, faults: `kill -9` of the server in the middle of 500 concurrent keyed writes.

Every screening whose 201 reached the client is stored exactly once; a retry of a request
that got no answer (same Idempotency-Key, same body) either stores it or replays it; no
screening lacks its audit event or the reverse; `screening audit verify` passes.
"""

import asyncio
import time
from pathlib import Path

import httpx

from tests.faults.support import (
    Outcome,
    ServerProcess,
    assert_whole,
    audit_verify,
    stored,
    submit,
    submit_all,
)
from tests.server import migrated_with_key

SUBMISSIONS = 500
CONCURRENCY = 32
KILL_AFTER = 150  # answered requests before the SIGKILL: the rest are in flight or queued


async def _load_then_kill(server: ServerProcess, api_key: str, keys: list[str]) -> list[Outcome]:
    """Fire every key at once (32 in flight) and SIGKILL the server after KILL_AFTER answers."""
    answered = 0
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:

        async def one(key: str) -> Outcome:
            nonlocal answered
            async with gate:
                outcome = await submit(http, api_key, key)
            answered += outcome.status is not None
            if answered == KILL_AFTER and outcome.status is not None:
                server.kill()  # blocks the loop until the process is gone: nothing else runs
            return outcome

        return list(await asyncio.gather(*(one(key) for key in keys)))


def test_sigkill_during_writes_loses_and_doubles_nothing(
    empty_database_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    api_key = migrated_with_key(empty_database_url)
    keys = [f"kill-{i}" for i in range(SUBMISSIONS)]
    server = ServerProcess(empty_database_url, tmp_path)
    try:
        server.start()
        first = asyncio.run(_load_then_kill(server, api_key, keys))
        acknowledged = {o.key: o.screening_id() for o in first if o.status == 201}
        unanswered = [o.key for o in first if o.status is None]
        # Only 201s before the kill, and a kill in the middle: requests were cut.
        assert {o.status for o in first} <= {201, None}
        assert KILL_AFTER <= len(acknowledged) < SUBMISSIONS
        assert unanswered, "the SIGKILL cut no request"

        server.start()  # the same database, as an orchestrator would restart it
        sample = list(acknowledged)[:: max(1, len(acknowledged) // 20)]
        retried = asyncio.run(submit_all(server.url, api_key, unanswered + sample, CONCURRENCY))
    finally:
        server.stop()

    assert {o.status for o in retried} == {201}
    final = acknowledged | {o.key: o.screening_id() for o in retried}
    # A retry of an acknowledged request replays it: the same screening, marked as a replay.
    for outcome in retried:
        if outcome.key in acknowledged:
            assert outcome.screening_id() == acknowledged[outcome.key]
            assert outcome.headers.get("idempotent-replayed") == "true"
    replays = sum(o.headers.get("idempotent-replayed") == "true" for o in retried)

    state = stored(empty_database_url)
    assert len(final) == SUBMISSIONS
    assert sorted(state.screening_ids) == sorted(final.values())  # each stored exactly once
    # One key row per key (stored as a digest), each naming its one screening.
    assert sorted(state.idempotency_keys.values()) == sorted(final.values())
    assert_whole(state)
    report = audit_verify(empty_database_url, tmp_path)
    assert report["count"] == len(state.seqs)
    print(
        f"acknowledged before the kill {len(acknowledged)}, unanswered {len(unanswered)}, "
        f"retries replayed {replays} (sample {len(sample)}), {time.monotonic() - started:.1f} s"
    )
