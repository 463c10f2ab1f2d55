"""Soak (issue 15): mixed traffic against a real server for a long time; does anything leak?

Sets up a fresh database with the service's own CLI (`db upgrade`, `apikey create`, `form
configure`, `user create`), starts `screening serve` as production runs it
(`SCREENING_ENVIRONMENT=prod`, real data and audit keys, an https public base URL, INFO
logs to a file), signs a physician in, creates a patient invitation, and then sends an
open-loop mix at a fixed rate:

    write 40 %   POST /v1/screenings (a new Idempotency-Key each)
    read 20 %    GET /v1/screenings/{id} of a screening written earlier
    list 15 %    GET /v1/screenings?decision=needs_review&limit=20
    form 15 %    GET the patient form's start page (invitation link)
    review 10 %  GET /review (the physician's queue) or /review/screenings/{id}

The rate defaults to half of a capacity measured first (16 clients, closed loop, for
``--probe`` seconds) unless ``--rate`` is given. Every ``--sample-every`` seconds it samples
the server's RSS (/proc/PID/status), its open file descriptors (/proc/PID/fd) and its
database connections (PostgreSQL: pg_stat_activity of the database; SQLite: descriptors
open on the database and WAL files); latencies are bucketed per minute. At the end
`screening audit verify` must pass. Verdict (defaults: the issue's):

    RSS growth after the warm-up < --max-rss-growth (10 %)
    file descriptors and DB connections: the last window's peak at most the first window's
        peak + --fd-slack (34: the client's 32 connections may still be opening) /
        --connection-slack (0) (no leak)
    p99 of the last window <= --max-p99-ratio (1.5) x p99 of the first window
        (both windows --window seconds, the first right after --warmup)
    no 5xx, no transport error

    python bench/soak.py                                   # SQLite, 20 min, half capacity
    python bench/soak.py --database-url postgresql+psycopg://postgres@127.0.0.1/soak_db
    python bench/soak.py --duration 60 --warmup 15 --window 20 --rate 20 --json soak.json

Exit status 0 when the verdict passes, 1 otherwise. Nothing here is a stand-in: one real
`screening serve` process over real HTTP.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

from app.crypto import generate_key_spec
from app.screening.schemas import ANSWERS_EXAMPLE

ANSWERS = ANSWERS_EXAMPLE  # the documented example: needs_review (raised blood pressure)
MIX = (("write", 40), ("read", 20), ("list", 15), ("form", 15), ("review", 10))
PUBLIC_BASE_URL = "https://screening.example.test"
PASSWORD = "soak-physician-password-0123456789"
CLINIC = "Soak clinic"
CLIENT_CONNECTIONS = 32


@dataclass
class Sample:
    at: float
    rss_kb: int
    fds: int
    connections: int


@dataclass
class Traffic:
    """What the clients saw: per operation and status, latencies per minute, failures."""

    counts: Counter[str] = field(default_factory=Counter)
    latencies: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    timed: list[tuple[float, float]] = field(default_factory=list)  # (start offset, latency)
    failures: Counter[str] = field(default_factory=Counter)
    late: int = 0


@dataclass
class Session:
    """The server under load and what the mix needs: key, cookie, invitation, ids."""

    url: str
    pid: int
    database_url: str
    api_key: str
    cookie: str
    form_path: str
    ids: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def screening_cli(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> str:
    """Run the `screening` command of this interpreter; return its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"screening {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def production_env(database_url: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")}
    return env | {
        "SCREENING_ENVIRONMENT": "prod",
        "SCREENING_DATABASE_URL": database_url,
        "SCREENING_DATA_KEY": generate_key_spec("soak"),
        "SCREENING_AUDIT_KEY": base64.b64encode(os.urandom(32)).decode(),
        "SCREENING_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "SCREENING_SECRETS_FILE": str(workdir / "secrets.env"),
        "SCREENING_LOG_LEVEL": "INFO",
        # One clinic key carries all the /v1 traffic: the soak measures leaks, not the limiter.
        "SCREENING_RATE_LIMIT_PER_SECOND": "100000",
        "SCREENING_RATE_LIMIT_BURST": "100000",
    }


@contextmanager
def running_server(env: dict[str, str], workdir: Path) -> Iterator[tuple[str, int]]:
    """`screening serve` (one process) until the block ends; (base URL, pid)."""
    port = free_port()
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            tail = (workdir / "server.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"the server did not become ready:\n{tail}")
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def prepare(env: dict[str, str], workdir: Path) -> str:
    """Migrate, create the clinic's key, its phone and a physician; return the API key."""
    screening_cli(["db", "upgrade"], env, workdir)
    output = screening_cli(
        ["apikey", "create", "--create-clinic", "--clinic", CLINIC], env, workdir
    )
    screening_cli(["form", "configure", "--clinic", CLINIC, "--phone", "+1 555 0100"], env, workdir)
    email = "physician@soak.example.test"
    user = ["user", "create", "--clinic", CLINIC, "--email", email, "--role", "physician"]
    screening_cli([*user, "--password-stdin"], env, workdir, stdin=PASSWORD + "\n")
    return output.strip().splitlines()[-1]


def sign_in(url: str) -> str:
    """Sign the physician in; return the session cookie as a Cookie header value."""
    form = {"email": "physician@soak.example.test", "password": PASSWORD, "next": "/review"}
    response = httpx.post(f"{url}/sign-in", data=form, timeout=60)
    if response.status_code != 303 or not response.headers.get("set-cookie"):
        raise SystemExit(f"sign-in failed: {response.status_code} {response.text[:300]}")
    return response.headers["set-cookie"].split(";", 1)[0]


def invitation_path(url: str, api_key: str) -> str:
    """Create a patient invitation; return its link's path (the link names the public URL)."""
    response = httpx.post(
        f"{url}/v1/invitations",
        json={"subject": {"reference": "SOAK-INVITE"}},
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": "soak-invitation"},
        timeout=60,
    )
    if response.status_code != 201:
        raise SystemExit(f"invitation failed: {response.status_code} {response.text[:300]}")
    return str(response.json()["url"]).removeprefix(PUBLIC_BASE_URL)


async def operate(
    http: httpx.AsyncClient, session: Session, kind: str, rng: random.Random
) -> tuple[str, int]:
    """Send one request of ``kind`` (a write while nothing is written yet); its kind, status."""
    auth = {"Authorization": f"Bearer {session.api_key}"}
    if kind == "write" or (kind in {"read", "review"} and not session.ids):
        key = f"soak-{rng.getrandbits(64):016x}"
        body = {
            "questionnaire": "ketamine-infusion-candidacy",
            "subject": {"reference": f"SOAK-{key}"},
            "answers": ANSWERS,
        }
        response = await http.post(
            "/v1/screenings", json=body, headers=auth | {"Idempotency-Key": key}
        )
        if response.status_code == 201:
            session.ids.append(str(response.json()["id"]))
        return "write", response.status_code
    recent = session.ids[-2_000:]
    if kind == "read":
        response = await http.get(f"/v1/screenings/{rng.choice(recent)}", headers=auth)
    elif kind == "list":
        response = await http.get("/v1/screenings?decision=needs_review&limit=20", headers=auth)
    elif kind == "form":
        response = await http.get(session.form_path)
    else:
        path = "/review" if rng.random() < 0.5 else f"/review/screenings/{rng.choice(recent)}"
        response = await http.get(path, headers={"Cookie": session.cookie})
    return kind, response.status_code


EXPECTED = {"write": 201, "read": 200, "list": 200, "form": 200, "review": 200}


async def timed_request(
    http: httpx.AsyncClient,
    session: Session,
    kind: str,
    rng: random.Random,
    traffic: Traffic,
    started: float,
) -> None:
    begin = time.monotonic()
    try:
        kind, status = await operate(http, session, kind, rng)
    except httpx.TransportError as error:
        traffic.failures[f"{kind} {type(error).__name__}"] += 1
        return
    latency = time.monotonic() - begin
    traffic.counts[f"{kind} {status}"] += 1
    if status != EXPECTED[kind]:
        traffic.failures[f"{kind} {status}"] += 1
    offset = begin - started
    traffic.latencies[int(offset // 60)].append(latency)
    traffic.timed.append((offset, latency))


def pick(rng: random.Random) -> str:
    return rng.choices([kind for kind, _ in MIX], [weight for _, weight in MIX])[0]


async def measure_capacity(http: httpx.AsyncClient, session: Session, seconds: float) -> float:
    """Requests/s of the mix with 16 clients in a closed loop (each sends when answered)."""
    rng, traffic, started = random.Random(1), Traffic(), time.monotonic()

    async def client() -> None:
        while time.monotonic() < started + seconds:
            await timed_request(http, session, pick(rng), rng, traffic, started)

    await asyncio.gather(*(client() for _ in range(16)))
    return sum(traffic.counts.values()) / (time.monotonic() - started)


async def drive(
    http: httpx.AsyncClient,
    session: Session,
    rate: float,
    duration: float,
    traffic: Traffic,
    started: float,
) -> None:
    """Start one request every 1/rate seconds (open loop) from ``started`` for ``duration``."""
    rng = random.Random(2)
    next_at, tasks = started, set[asyncio.Task[None]]()
    while (now := time.monotonic()) < started + duration:
        if now < next_at:
            await asyncio.sleep(next_at - now)
            continue
        next_at += 1 / rate
        if len(tasks) >= 256:  # the server is far behind: count it, do not pile on
            traffic.late += 1
            continue
        task = asyncio.create_task(timed_request(http, session, pick(rng), rng, traffic, started))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)


def take_sample(session: Session, started: float, count_connections: Any) -> Sample:
    status = Path(f"/proc/{session.pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    fds = os.listdir(f"/proc/{session.pid}/fd")
    return Sample(time.monotonic() - started, rss_kb, len(fds), count_connections(fds))


@contextmanager
def connection_counter(session: Session) -> Iterator[Any]:
    """A function of the server's fd list giving its database connections."""
    if session.database_url.startswith("sqlite"):
        path = str(Path(make_url(session.database_url).database or "").resolve())

        def sqlite_files(fds: list[str]) -> int:
            links = []
            for fd in fds:
                try:
                    links.append(os.readlink(f"/proc/{session.pid}/fd/{fd}"))
                except OSError:  # closed meanwhile
                    continue
            return sum(link in {path, path + "-wal"} for link in links)

        yield sqlite_files
        return
    engine = create_engine(session.database_url, pool_size=1)
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    def backends(_fds: list[str]) -> int:
        with engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    try:
        yield backends
    finally:
        engine.dispose()


async def sample_until(
    session: Session, started: float, duration: float, every: float, samples: list[Sample]
) -> None:
    with connection_counter(session) as count_connections:
        while time.monotonic() < started + duration:
            samples.append(
                await asyncio.to_thread(take_sample, session, started, count_connections)
            )
            await asyncio.sleep(every)
        samples.append(await asyncio.to_thread(take_sample, session, started, count_connections))


def p99(latencies: list[float]) -> float:
    if len(latencies) < 2:
        return latencies[0] if latencies else 0.0
    return statistics.quantiles(latencies, n=100, method="inclusive")[98]


def verdict(samples: list[Sample], traffic: Traffic, args: argparse.Namespace) -> dict[str, Any]:
    """The issue's checks, comparing the first window after the warm-up with the last."""
    first_end, last_start = args.warmup + args.window, args.duration - args.window
    first = [s for s in samples if args.warmup <= s.at < first_end] or samples[-1:]
    last = [s for s in samples if s.at >= last_start] or samples[-1:]
    rss_growth = (
        statistics.median(s.rss_kb for s in last) / statistics.median(s.rss_kb for s in first) - 1
    )
    p99_first = p99([lat for at, lat in traffic.timed if args.warmup <= at < first_end])
    p99_last = p99([lat for at, lat in traffic.timed if at >= last_start])
    fds = (max(s.fds for s in first), max(s.fds for s in last))
    connections = (max(s.connections for s in first), max(s.connections for s in last))
    checks = {
        "rss_growth": rss_growth < args.max_rss_growth,
        "no_fd_leak": fds[1] <= fds[0] + args.fd_slack,
        "no_connection_leak": connections[1] <= connections[0] + args.connection_slack,
        "p99_stable": p99_last <= max(args.max_p99_ratio * p99_first, args.p99_floor_ms / 1e3),
        "no_errors": not traffic.failures,
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "rss_growth": round(rss_growth, 4),
        "rss_kb_first_last": [statistics.median(s.rss_kb for s in w) for w in (first, last)],
        "fds_first_last": list(fds),
        "connections_first_last": list(connections),
        "p99_ms_first_last": [round(p99_first * 1e3, 1), round(p99_last * 1e3, 1)],
        "p99_ms_per_minute": {
            str(minute): round(p99(values) * 1e3, 1)
            for minute, values in sorted(traffic.latencies.items())
        },
    }


async def soak(session: Session, args: argparse.Namespace) -> dict[str, Any]:
    """Measure the capacity (unless --rate), run the mix at the rate, sample, judge."""
    # At most CLIENT_CONNECTIONS sockets to the server: its descriptor count may grow by as
    # many while the client opens them (hence the default --fd-slack), never by more.
    # An idle socket is dropped by the client after 2 s, before uvicorn closes it (its
    # keep-alive timeout is 5 s, httpx's default expiry too): with equal timeouts a request
    # sent as the server closes the socket fails as a ReadError, which is the client's race,
    # not the server's failure (two of 58,609 requests in a 20-minute run).
    limits = httpx.Limits(
        max_connections=CLIENT_CONNECTIONS,
        max_keepalive_connections=CLIENT_CONNECTIONS,
        keepalive_expiry=2.0,
    )
    async with httpx.AsyncClient(base_url=session.url, timeout=60, limits=limits) as http:
        capacity = args.capacity
        if args.rate is None and capacity is None:
            capacity = await measure_capacity(http, session, args.probe)
        rate = args.rate or capacity * args.fraction
        traffic, samples, started = Traffic(), list[Sample](), time.monotonic()
        await asyncio.gather(
            drive(http, session, rate, args.duration, traffic, started),
            sample_until(session, started, args.duration, args.sample_every, samples),
        )
    judged = verdict(samples, traffic, args)
    return judged | {
        "capacity_rps": None if capacity is None else round(capacity, 1),
        "rate_rps": round(rate, 1),
        "duration_s": args.duration,
        "requests": dict(sorted(traffic.counts.items())),
        "failures": dict(traffic.failures),
        "late": traffic.late,
        "samples": [asdict(sample) for sample in samples],
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--database-url", help="an existing, empty database (default: a SQLite temp file)")
    add("--duration", type=float, default=1200.0, help="seconds of traffic (default 20 min)")
    add("--rate", type=float, help="requests/s (default: --fraction of measured capacity)")
    add("--capacity", type=float, help="known capacity in requests/s (skips the probe)")
    add("--fraction", type=float, default=0.5, help="share of the capacity to send")
    add("--probe", type=float, default=30.0, help="seconds of the capacity probe")
    add("--warmup", type=float, default=120.0, help="seconds ignored before the first window")
    add("--window", type=float, default=300.0, help="seconds of the first and last windows")
    add("--sample-every", type=float, default=5.0, help="seconds between samples")
    add("--max-rss-growth", type=float, default=0.10)
    add("--fd-slack", type=int, default=CLIENT_CONNECTIONS + 2)
    add("--connection-slack", type=int, default=0)
    add("--max-p99-ratio", type=float, default=1.5)
    add("--p99-floor-ms", type=float, default=0.0, help="a last-window p99 below it passes")
    add("--json", type=Path, help="write the full report here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'soak.db'}"
    env = production_env(database_url, workdir)
    api_key = prepare(env, workdir)
    with running_server(env, workdir) as (url, pid):
        cookie, form_path = sign_in(url), invitation_path(url, api_key)
        session = Session(url, pid, database_url, api_key, cookie, form_path)
        report = asyncio.run(soak(session, args))
    verified = json.loads(screening_cli(["audit", "verify", "--json"], env, workdir))
    report["audit_verify_ok"] = bool(verified["ok"])
    report["ok"] = report["ok"] and report["audit_verify_ok"]
    if report["ok"]:
        shutil.rmtree(workdir)
    else:
        print(f"kept {workdir} (server.log, database) for a look", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    summary = {k: v for k, v in report.items() if k not in {"samples", "p99_ms_per_minute"}}
    print(json.dumps(summary, indent=2))
    print("p99 per minute (ms):", report["p99_ms_per_minute"])
    print("VERDICT:", "PASS" if report["ok"] else "FAIL")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
