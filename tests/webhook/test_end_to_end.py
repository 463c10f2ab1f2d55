"""Real `screening serve` processes delivering to a real receiver: outage and kill -9.

Acceptance (issue 16): with the receiver down for 60 seconds under load, every event is
delivered once it is back, in order per screening (the receiver de-duplicates by webhook-id:
the count is exact), and signatures verify with ``standardwebhooks``; ``kill -9`` of the
server during delivery loses no event.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.crypto import KeyRing
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Screening
from app.db.unit import session_scope
from app.webhook import service as webhook_service
from tests.factories import CANDIDATE_ANSWERS, DATA_KEY, NEEDS_REVIEW_ANSWERS
from tests.server import migrated_with_key, server_env
from tests.webhook.support import Received, receiver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _serve(database_url: str, workdir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    with (workdir / f"serve-{port}.log").open("ab") as log:
        process = subprocess.Popen(
            command, env=server_env(database_url, workdir), cwd=workdir, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not become ready")
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def _endpoint(database_url: str, url: str) -> str:
    """Add an endpoint for the key's clinic (every event type); return its secret."""
    engine = make_engine(database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        clinic = apikey_service.find_clinic(session, name="Server clinic")
        assert clinic is not None
        created = webhook_service.add(
            session,
            keyring=KeyRing.parse(DATA_KEY),
            clinic_id=clinic.id,
            url=url,
            events=["screening.created", "screening.flagged"],
            actor=audit_service.Actor.cli(),
            now=datetime.now(UTC),
        )
    engine.dispose()
    return created.secret


def _screenings(database_url: str) -> dict[str, bool]:
    """Every stored screening id, and whether it is flagged (two events, else one)."""
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        rows = session.execute(select(Screening.id, Screening.decision)).all()
    engine.dispose()
    return {str(row_id): decision.value != "candidate" for row_id, decision in rows}


def _post(base: str, key: str, count: int, spread: float) -> None:
    """``count`` screenings from two threads over about ``spread`` seconds (half flagged)."""

    def run(offset: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
            for i in range(offset, count, 2):
                answers = NEEDS_REVIEW_ANSWERS if i % 2 else CANDIDATE_ANSWERS
                body = {"questionnaire": "ketamine-infusion-candidacy",
                        "subject": {"reference": f"MRN-{i}"}, "answers": answers}  # fmt: skip
                assert http.post("/v1/screenings", json=body, timeout=30).status_code == 201
                time.sleep(spread / count * 2)

    threads = [threading.Thread(target=run, args=(offset,)) for offset in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _wait_for(received: Received, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(received.unique()) < expected:
        time.sleep(0.5)


def _check(received: Received, screenings: dict[str, bool], secret: str) -> None:
    unique = received.unique()
    assert len(unique) == sum(2 if flagged else 1 for flagged in screenings.values())
    order: dict[str, list[str]] = {}
    for payload in unique.values():  # first arrivals, in arrival order
        order.setdefault(payload["data"]["screening_id"], []).append(payload["type"])
    assert set(order) == set(screenings)
    for screening_id, types in order.items():
        expected = ["screening.created", "screening.flagged"][
            : 2 if screenings[screening_id] else 1
        ]
        assert types == expected, screening_id
    with received.lock:
        requests = list(received.requests)
    for headers, body in requests:
        Webhook(secret).verify(body, headers)  # raises if the signature does not verify
        assert b"MRN-" not in body


def test_receiver_down_60_seconds_under_load(empty_database_url: str, tmp_path: Path) -> None:
    key = migrated_with_key(empty_database_url)
    hook_port, port = _free_port(), _free_port()
    secret = _endpoint(empty_database_url, f"http://127.0.0.1:{hook_port}/hooks")
    with _serve(empty_database_url, tmp_path, port):
        down_since = time.monotonic()
        _post(f"http://127.0.0.1:{port}", key, count=40, spread=40)
        time.sleep(max(0.0, 60 - (time.monotonic() - down_since)))
        with receiver(hook_port) as received:
            screenings = _screenings(empty_database_url)
            expected = sum(2 if flagged else 1 for flagged in screenings.values())
            assert len(screenings) == 40
            _wait_for(received, expected, timeout=150)
            _check(received, screenings, secret)


def test_kill_9_during_delivery_loses_no_event(empty_database_url: str, tmp_path: Path) -> None:
    key = migrated_with_key(empty_database_url)
    port = _free_port()
    with receiver() as received:
        received.delay = 0.3
        secret = _endpoint(empty_database_url, received.url)
        with _serve(empty_database_url, tmp_path, port) as process:
            _post(f"http://127.0.0.1:{port}", key, count=20, spread=2)
            deadline = time.monotonic() + 60
            while len(received.unique()) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        screenings = _screenings(empty_database_url)
        expected = sum(2 if flagged else 1 for flagged in screenings.values())
        assert len(received.unique()) < expected  # killed mid-delivery
        received.delay = 0.0
        with _serve(empty_database_url, tmp_path, port):
            _wait_for(received, expected, timeout=120)  # leases of killed sends expire (30 s)
        _check(received, screenings, secret)
