"""Bench: the service's POST endpoints against a bare FastAPI echo, in one run (issues 3 and 4).

Builds a fresh database (a SQLite file in a temp directory, or a PostgreSQL database created
and dropped by the bench), migrates it and creates a clinic API key with the service's own
CLI (`screening db upgrade`, `screening apikey create`), then starts two uvicorn processes on
127.0.0.1: the service (`screening serve`, production settings: data key and audit key set,
so screenings are encrypted and every write appends a hash-chained audit event) and
`bench/echo_app.py`. Each target gets the same load for a fixed time, round after round:

    echo                         POST /echo (validate the screening body, return it)
    evaluate                     POST /v1/evaluate (auth + validation + rules, nothing stored)
    screenings (Idempotency-Key) POST /v1/screenings, a new key per request
    screenings (no key)          POST /v1/screenings without the header

The load generator is `wrk` (one thread, N connections) when it is on PATH; otherwise, an
asyncio httpx client in a second process (slower: it then bounds the echo, and the ratios
read high). The bench says which one it used. Prints the median requests/s, p50 and p99 of
the rounds, the ratios to the echo, and the issue targets.

    python bench/api.py                                    # SQLite, 3 rounds of 10 s
    python bench/api.py --postgres postgresql+psycopg://postgres@127.0.0.1/postgres
    python bench/api.py --duration 5 --rounds 1 --client httpx
"""

import argparse
import asyncio
import base64
import dataclasses
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, make_url, select, text

from app.crypto import generate_key_spec
from app.db.models import AuditEvent, Screening
from app.screening.schemas import ANSWERS_EXAMPLE

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
QUESTIONNAIRE = "ketamine-infusion-candidacy"
ANSWERS = ANSWERS_EXAMPLE
SCREENING_BODY = {
    "questionnaire": QUESTIONNAIRE,
    "subject": {"reference": "MRN-0042-7781"},
    "answers": ANSWERS,
}
EVALUATE_BODY = {"questionnaire": QUESTIONNAIRE, "answers": ANSWERS}
# (ratio to the echo's requests/s at least, p99 at most in ms or None): issues 3 and 4.
TARGETS = {
    "evaluate": (0.60, None),
    "screenings (Idempotency-Key)": (0.12, 50.0),
    "screenings (no key)": (0.12, 50.0),
}


@dataclass(frozen=True)
class Target:
    """One endpoint under load."""

    name: str
    url: str
    body: dict[str, Any]
    headers: dict[str, str]
    expect: int
    unique_key: bool = False


@dataclass(frozen=True)
class Result:
    """One load run: completed requests/s, latency percentiles, and failed requests."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int
    cpu_ms: float = float("nan")  # server CPU time (user + system) per request


# --- load generators ----------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
local unique = {unique}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  prefix = "{run}-" .. tostring(tid) .. "-"
  counter = 0
  template = {{}}
  for name, value in pairs(wrk.headers) do template[name] = value end
end
function request()
  if not unique then return wrk.format() end
  counter = counter + 1
  template["Idempotency-Key"] = prefix .. counter
  return wrk.format(nil, nil, template, nil)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH-RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def run_wrk(target: Target, duration: float, connections: int, workdir: Path) -> Result:
    """Drive ``target`` with wrk (one thread) and parse the summary its Lua ``done`` prints."""
    headers = "\n".join(
        f'wrk.headers["{name}"] = "{value}"'
        for name, value in ({"Content-Type": "application/json"} | target.headers).items()
    )
    script = workdir / f"{uuid.uuid4().hex}.lua"
    script.write_text(
        WRK_SCRIPT.format(
            body=json.dumps(target.body),
            headers=headers,
            unique="true" if target.unique_key else "false",
            run=uuid.uuid4().hex[:12],
        )
    )
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        target.url,
    ]
    try:
        output = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=duration + 60
        ).stdout
    finally:
        script.unlink(missing_ok=True)
    line = next(line for line in output.splitlines() if line.startswith("BENCH-RESULT"))
    requests, micros, p50, p99, errors = (int(part) for part in line.split()[1:])
    # wrk counts 4xx/5xx as status errors; a 201/200 endpoint never returns 3xx here.
    return Result(requests / (micros / 1e6), p50 / 1e3, p99 / 1e3, requests, errors)


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    """The httpx client: ``connections`` workers, each sending requests back to back."""
    body = json.dumps(spec["body"]).encode()
    headers = {"Content-Type": "application/json"} | spec["headers"]
    latencies: list[float] = []
    failures = 0
    run = uuid.uuid4().hex[:12]
    limits = httpx.Limits(max_connections=spec["connections"], max_keepalive_connections=None)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def worker(number: int, until: float) -> None:
            nonlocal failures
            sent = 0
            while time.perf_counter() < until:
                sent += 1
                extra = {"Idempotency-Key": f"{run}-{number}-{sent}"} if spec["unique"] else {}
                began = time.perf_counter()
                try:
                    response = await client.post(spec["url"], content=body, headers=headers | extra)
                    ok = response.status_code == spec["expect"]
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - began)
                failures += not ok

        began = time.perf_counter()
        until = began + spec["duration"]
        await asyncio.gather(*(worker(n, until) for n in range(spec["connections"])))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
        "requests": len(latencies),
        "failures": failures,
    }


def run_httpx(target: Target, duration: float, connections: int) -> Result:
    """Drive ``target`` from a second Python process running :func:`_drive`."""
    spec = {
        "url": target.url,
        "body": target.body,
        "headers": target.headers,
        "expect": target.expect,
        "unique": target.unique_key,
        "duration": duration,
        "connections": connections,
    }
    output = subprocess.run(
        [sys.executable, __file__, "--drive", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    return Result(**json.loads(output.splitlines()[-1]))


# --- processes ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def process(
    command: list[str], *, env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` for the duration of the block; SIGTERM (then SIGKILL) on the way out."""
    with log.open("wb") as output:
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield child
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def wait_until_up(url: str, log: Path, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log when it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up; its log:\n{log.read_text(errors='replace')}")


def screening_cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a ``screening`` command of this venv; return its standard output."""
    executable = str(Path(sys.executable).with_name("screening"))
    done = subprocess.run(
        [executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise SystemExit(f"screening {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


@contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the server of ``base_url``, dropped afterwards."""
    name = f"api_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(base_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(base_url).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- the bench ---------------------------------------------------------------------------


def check_once(target: Target) -> None:
    """One request per target before timing: fail loudly if an endpoint is not answering."""
    headers = target.headers | ({"Idempotency-Key": uuid.uuid4().hex} if target.unique_key else {})
    response = httpx.post(target.url, json=target.body, headers=headers, timeout=10.0)
    if response.status_code != target.expect:
        raise SystemExit(f"{target.name}: {response.status_code} {response.text[:500]}")


def stored_counts(url: str) -> tuple[int, int]:
    """The number of stored screenings and audit events."""
    engine = create_engine(url)
    with engine.connect() as connection:
        screenings = connection.scalar(select(func.count()).select_from(Screening)) or 0
        events = connection.scalar(select(func.count()).select_from(AuditEvent)) or 0
    engine.dispose()
    return screenings, events


def median_result(results: list[Result]) -> Result:
    """The per-field median of several rounds (failures summed)."""
    return Result(
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.requests for r in results),
        sum(r.failures for r in results),
        statistics.median(r.cpu_ms for r in results),
    )


def report(
    label: str, client: str, args: argparse.Namespace, runs: dict[str, list[Result]]
) -> bool:
    """Print the medians, the ratios to the echo and the targets; True if all are met."""
    medians = {name: median_result(results) for name, results in runs.items()}
    echo = medians["echo"].rps
    print(
        f"\n{label}: {args.rounds} round(s) of {args.duration:g} s, {args.connections} "
        f"connections, client {client}; medians of the rounds"
    )
    print(
        f"{'target':<30} {'req/s':>8} {'x echo':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'failed':>7} {'CPU ms/req':>10}  target"
    )
    all_met = True
    for name, result in medians.items():
        ratio = result.rps / echo
        goal = TARGETS.get(name)
        verdict = ""
        if goal is not None:
            ratio_goal, p99_goal = goal
            met = ratio >= ratio_goal and (p99_goal is None or result.p99_ms <= p99_goal)
            met = met and result.failures == 0
            all_met = all_met and met
            verdict = f"≥ {ratio_goal:.2f} x echo" + (
                f", p99 ≤ {p99_goal:g} ms" if p99_goal else ""
            )
            verdict += ": met" if met else ": MISSED"
        print(
            f"{name:<30} {result.rps:>8,.0f} {ratio:>7.3f} {result.p50_ms:>7.2f} "
            f"{result.p99_ms:>7.2f} {result.failures:>7} {result.cpu_ms:>10.3f}  {verdict}"
        )
    for name, results in runs.items():
        rounds = ", ".join(f"{r.rps:,.0f}/{r.p99_ms:.1f}" for r in results)
        print(f"  rounds of {name} (req/s / p99 ms): {rounds}")
    return all_met


def bench(database_url: str, args: argparse.Namespace, workdir: Path) -> bool:
    """Set up the database, start both servers, run the rounds and print the report."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SCREENING_") and key != "PYTHONPATH"
    }
    env |= {
        "SCREENING_ENVIRONMENT": "prod",
        "SCREENING_DATABASE_URL": database_url,
        "SCREENING_DATA_KEY": generate_key_spec("bench"),
        "SCREENING_AUDIT_KEY": base64.b64encode(os.urandom(32)).decode(),
        "SCREENING_SECRETS_FILE": str(workdir / "secrets.env"),
        "SCREENING_LOG_LEVEL": args.log_level,
        # capacity is measured here, not the per-credential rate limit (README)
        "SCREENING_RATE_LIMIT_PER_SECOND": "100000",
        "SCREENING_RATE_LIMIT_BURST": "100000",
    }
    screening_cli(["db", "upgrade"], env, workdir)
    key = screening_cli(
        ["apikey", "create", "--create-clinic", "--clinic", "Bench clinic"], env, workdir
    )
    key = key.strip().splitlines()[-1]
    service_port, echo_port = free_port(), free_port()
    service_log, echo_log = workdir / "service.log", workdir / "echo.log"
    auth = {"Authorization": f"Bearer {key}"}
    service = f"http://{HOST}:{service_port}"
    targets = [
        Target("echo", f"http://{HOST}:{echo_port}/echo", SCREENING_BODY, {}, 200),
        Target("evaluate", f"{service}/v1/evaluate", EVALUATE_BODY, auth, 200),
        Target(
            "screenings (Idempotency-Key)",
            f"{service}/v1/screenings",
            SCREENING_BODY,
            auth,
            201,
            unique_key=True,
        ),
        Target("screenings (no key)", f"{service}/v1/screenings", SCREENING_BODY, auth, 201),
    ]
    if args.skip_evaluate:
        targets = [target for target in targets if target.name != "evaluate"]
    client = "wrk" if args.client == "wrk" else "httpx (asyncio, second process)"
    uvicorn_echo = [
        sys.executable,
        "-m",
        "uvicorn",
        "echo_app:app",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        HOST,
        "--port",
        str(echo_port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    serve = [
        str(Path(sys.executable).with_name("screening")),
        "serve",
        "--host",
        HOST,
        "--port",
        str(service_port),
    ]
    with ExitStack() as stack:
        service_pid = stack.enter_context(process(serve, env=env, cwd=workdir, log=service_log)).pid
        echo_pid = stack.enter_context(
            process(uvicorn_echo, env=env, cwd=workdir, log=echo_log)
        ).pid
        wait_until_up(f"{service}/readyz", service_log)
        wait_until_up(f"http://{HOST}:{echo_port}/openapi.json", echo_log)
        for target in targets:
            check_once(target)
        before = stored_counts(database_url)
        runs: dict[str, list[Result]] = {target.name: [] for target in targets}
        created = 0
        for round_number in range(args.rounds):
            for target in targets:
                if round_number == 0 and args.warmup > 0:
                    result = drive(target, args.warmup, args, workdir)
                    created += result.requests if target.expect == 201 else 0
                    time.sleep(0.5)
                pid = echo_pid if target.name == "echo" else service_pid
                cpu_before = cpu_seconds(pid)
                result = drive(target, args.duration, args, workdir)
                cpu_ms = (cpu_seconds(pid) - cpu_before) * 1e3 / max(1, result.requests)
                result = dataclasses.replace(result, cpu_ms=cpu_ms)
                created += result.requests - result.failures if target.expect == 201 else 0
                runs[target.name].append(result)
                time.sleep(1.0)
    after = stored_counts(database_url)
    label = "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"
    met = report(label, client, args, runs)
    print(
        f"  stored during the timed load: {after[0] - before[0]:,} screenings, "
        f"{after[1] - before[1]:,} audit events (201 responses counted: {created:,}+)"
    )
    return met


def drive(target: Target, duration: float, args: argparse.Namespace, workdir: Path) -> Result:
    """Run one load of ``duration`` seconds with the chosen client."""
    if args.client == "wrk":
        return run_wrk(target, duration, args.connections, workdir)
    return run_httpx(target, duration, args.connections)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds, first round only")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--log-level", default="INFO", help="the service's SCREENING_LOG_LEVEL")
    parser.add_argument(
        "--skip-evaluate", action="store_true", help="bench the echo and the writes only"
    )
    parser.add_argument("--postgres", help="URL of any database on the server to bench against")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        print(json.dumps(asyncio.run(_drive(json.loads(args.drive)))))
        return
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "httpx"
        if args.client == "httpx":
            print("wrk is not on PATH: using the httpx client (it bounds the echo; see README)")
    print(f"machine: nproc {os.cpu_count()}, Python {sys.version.split()[0]}, {time.ctime()}")
    with tempfile.TemporaryDirectory(prefix="api-bench-") as directory:
        workdir = Path(directory)
        if args.postgres:
            with postgres_database(args.postgres) as url:
                met = bench(url, args, workdir)
        else:
            met = bench(f"sqlite:///{workdir / 'bench.db'}", args, workdir)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
