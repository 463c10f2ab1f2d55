"""Shared by the fault tests: a server process that can be SIGKILLed, load, and the checks.

Each test runs a real `python -m app serve` process over real HTTP on a fresh database and
stops (or kills) it in a ``finally``, so a failing test leaves no process behind.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.db.engine import make_engine
from app.db.models import AuditEvent, AuditHead, IdempotencyKey, Screening
from tests.factories import CANDIDATE_ANSWERS, NEEDS_REVIEW_ANSWERS
from tests.server import server_env

PROBLEM_JSON = "application/problem+json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """One `screening serve` process (single worker, so its pid is the serving process)."""

    database_url: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> bytes:
        return b"".join(
            path.read_bytes() for path in sorted(self.workdir.glob("server-*.log")) if path.exists()
        )

    def start(self) -> None:
        """Start the server and wait (at most 90 s) until /readyz answers 200."""
        self.starts += 1
        command = [sys.executable, "-m", "app", "serve", "--port", str(self.port)]
        with (self.workdir / f"server-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env=server_env(self.database_url, self.workdir, **self.env),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"the server did not become ready:\n{self.logs().decode()[-3000:]}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, in-flight requests are cut."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Terminate (then kill, if it lingers); safe to call more than once."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def body_for(key: str) -> dict[str, Any]:
    """The submission sent under ``key``: a retry sends the same body."""
    return {
        "questionnaire": "ketamine-infusion-candidacy",
        "subject": {"reference": f"REF-{key}"},
        "answers": NEEDS_REVIEW_ANSWERS if int(key.rsplit("-", 1)[1]) % 2 else CANDIDATE_ANSWERS,
    }


@dataclass(frozen=True)
class Outcome:
    """What the client saw for one request: a status (None: no response) and the body."""

    key: str
    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    elapsed: float = 0.0

    def screening_id(self) -> str:
        assert self.status == 201, (self.status, self.body[:300])
        return str(httpx.Response(201, content=self.body).json()["id"])


async def submit(http: httpx.AsyncClient, api_key: str, key: str) -> Outcome:
    """POST one screening under ``key``; a transport error is an outcome without status."""
    headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": key}
    started = time.monotonic()
    try:
        response = await http.post("/v1/screenings", json=body_for(key), headers=headers)
    except httpx.TransportError:
        return Outcome(key, None, started=started, elapsed=time.monotonic() - started)
    return Outcome(
        key,
        response.status_code,
        response.content,
        dict(response.headers),
        started,
        time.monotonic() - started,
    )


async def submit_all(
    base_url: str, api_key: str, keys: list[str], concurrency: int = 32
) -> list[Outcome]:
    """Submit every key, at most ``concurrency`` at once; outcomes in the order of ``keys``."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:

        async def one(key: str) -> Outcome:
            async with gate:
                return await submit(http, api_key, key)

        return list(await asyncio.gather(*(one(key) for key in keys)))


@dataclass(frozen=True)
class Stored:
    """What the database holds after a run: screenings, keys, creation events, the chain."""

    screening_ids: list[str]
    idempotency_keys: dict[str, str]
    created_targets: list[str]
    seqs: list[int]
    head_seq: int | None


def stored(database_url: str) -> Stored:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            ids = [str(i) for i in connection.scalars(select(Screening.id))]
            keys = {
                str(key): str(screening_id)
                for key, screening_id in connection.execute(
                    select(IdempotencyKey.key, IdempotencyKey.screening_id)
                )
            }
            targets = [
                str(target)
                for target in connection.scalars(
                    select(AuditEvent.target_id).where(AuditEvent.action == "screening.created")
                )
            ]
            seqs = list(connection.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
            head = connection.scalar(select(AuditHead.seq))
            assert connection.scalar(select(func.count()).select_from(Screening)) == len(ids)
    finally:
        engine.dispose()
    return Stored(ids, keys, targets, seqs, head)


def assert_whole(state: Stored) -> None:
    """No partial write: every screening has exactly one creation event and vice versa; the
    chain's sequence has no gap and its head is the last event."""
    assert Counter(state.created_targets) == Counter(state.screening_ids)
    assert len(set(state.screening_ids)) == len(state.screening_ids)
    assert state.seqs == list(range(1, len(state.seqs) + 1))
    assert state.head_seq == len(state.seqs)


def audit_verify(database_url: str, workdir: Path, *args: str) -> dict[str, Any]:
    """Run `screening audit verify --json` as an operator would; fail unless it passes."""
    result = subprocess.run(
        [sys.executable, "-m", "app", "audit", "verify", "--json", *args],
        env=server_env(database_url, workdir),
        capture_output=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()[-3000:]
    report: dict[str, Any] = httpx.Response(200, content=result.stdout).json()
    assert report["ok"] is True
    return report
