"""Sign-in throttling: growing delays per email and per source address, never a lockout, and
a cap on concurrent argon2id verifications. Time is the app's injected clock."""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.account import password as passwords
from app.account import service as account_service
from app.account.throttle import (
    SOURCE_FREE_FAILURES,
    Busy,
    SourceThrottle,
    VerifyGate,
    backoff,
)
from app.account.ui import SOURCE_WAITING
from app.db.models import AuditEvent
from app.engine import Ruleset
from tests.factories import FixedClock
from tests.review.seed import https_client, seed_queue, sign_in

T0 = datetime(2026, 6, 15, 14, 30, tzinfo=UTC)


def test_backoff_doubles_after_the_free_failures_up_to_the_cap() -> None:
    cap = timedelta(minutes=1)
    delays = [backoff(n, free=5, cap=cap).total_seconds() for n in range(1, 14)]
    assert delays == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff(10_000, free=5, cap=cap) == cap


def test_the_email_waits_longer_after_each_failure_then_the_right_password_works(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    # each attempt from its own address: only the per-email delay applies
    statuses = []
    for attempt in range(7):
        statuses.append(_from(app, f"10.1.0.{attempt}", seeded.physician, "wrong"))
        clock.at += timedelta(seconds=2 ** max(0, attempt - 4))  # exactly each delay
    assert statuses == [400, 400, 400, 400, 429, 429, 429]
    # the seventh failure asked for 4 s: 3 s later even the right password waits ...
    clock.at -= timedelta(seconds=1)
    assert _from(app, "10.1.0.99", seeded.physician) == 429
    # ... and once the delay has passed it signs in: a delay, never a lock
    clock.at += timedelta(seconds=1)
    assert _from(app, "10.1.0.99", seeded.physician) == 303


def test_an_attacker_cannot_keep_a_physician_out_for_more_than_a_minute(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    for attempt in range(40):  # 40 wrong passwords from 40 addresses
        _from(app, f"10.2.{attempt}.1", seeded.physician, "wrong")
        clock.at += account_service.MAX_DELAY
    assert _from(app, "192.168.1.5", seeded.physician) == 303


def test_a_source_with_many_failures_waits_whatever_email_it_tries(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    for attempt in range(SOURCE_FREE_FAILURES):
        assert _from(app, "203.0.113.9", f"guess{attempt}@example.org", "wrong") == 400
    refused = _response(app, "203.0.113.9", seeded.physician)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert SOURCE_WAITING in refused.text
    assert _from(app, "198.51.100.7", seeded.physician) == 303  # another address is not held
    clock.at += timedelta(seconds=1)
    assert _from(app, "203.0.113.9", seeded.physician) == 303


def test_refusals_during_a_source_delay_verify_nothing_and_write_nothing(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seed_queue(session, ruleset=ruleset, now=clock.now())
    for attempt in range(SOURCE_FREE_FAILURES):
        _from(app, "203.0.113.10", f"guess{attempt}@example.org", "wrong")
    events = session.scalar(select(func.count()).select_from(AuditEvent))
    for _ in range(20):
        assert _from(app, "203.0.113.10", "someone@example.org", "wrong") == 429
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events


def test_the_source_table_is_bounded_and_a_flood_does_not_reset_a_delayed_source() -> None:
    throttle = SourceThrottle(max_entries=1000)
    for _ in range(SOURCE_FREE_FAILURES + 8):
        throttle.fail("198.51.100.1", T0)
    held_until = throttle.blocked_until("198.51.100.1", T0)
    assert held_until == T0 + timedelta(seconds=256)  # 2 ** 8, under the cap
    now = T0
    for n in range(20_000):  # a flood of fresh addresses, each failing once
        now += timedelta(microseconds=1)
        throttle.fail(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", now)
        if n % 500 == 0:
            throttle.fail("198.51.100.1", now)  # the attacker keeps failing, stays recent
    assert len(throttle) <= 1000
    assert throttle.blocked_until("198.51.100.1", now) is not None


def test_the_gate_lets_two_verify_eight_wait_and_answers_the_rest_at_once() -> None:
    gate = VerifyGate(running=2, waiting=8)
    release = threading.Event()
    inside = threading.Semaphore(0)
    outcomes: list[str] = []

    def verify() -> None:
        try:
            with gate.slot():
                inside.release()
                release.wait()
            outcomes.append("verified")
        except Busy:
            outcomes.append("busy")

    threads = [threading.Thread(target=verify) for _ in range(10)]
    for thread in threads:
        thread.start()
    for _ in range(2):
        assert inside.acquire(timeout=30)  # two run; eight wait for a slot
    assert not inside.acquire(blocking=False)
    while gate._admitted < 10:  # the waiting eight are admitted (no timing assumed)
        threading.Event().wait(0.001)
    with pytest.raises(Busy), gate.slot():  # the eleventh is refused at once, without waiting
        pass
    release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == ["verified"] * 10


def test_a_sign_in_beyond_the_gate_is_a_fast_503(
    app: FastAPI,
    session: Session,
    ruleset: Ruleset,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    monkeypatch.setattr(passwords, "GATE", VerifyGate(running=0, waiting=0))
    busy = _response(app, "10.3.0.1", seeded.physician)
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert "try again in a moment" in busy.text
    monkeypatch.undo()
    assert _from(app, "10.3.0.1", seeded.physician) == 303  # nothing was counted against it


@pytest.fixture(autouse=True)
def _started(app: FastAPI) -> Iterator[None]:
    """The app's lifespan runs once; each address below gets a client of its own."""
    with https_client(app):
        yield


def _response(app: FastAPI, source: str, email: str, password: str | None = None) -> Response:
    client = TestClient(
        app, base_url="https://testserver", follow_redirects=False, client=(source, 1)
    )
    return sign_in(client, email) if password is None else sign_in(client, email, password)


def _from(app: FastAPI, source: str, email: str, password: str | None = None) -> int:
    return int(_response(app, source, email, password).status_code)
