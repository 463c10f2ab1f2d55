"""Bench: `screening rules impact` over 1,000,000 stored screenings (issue 13), time and peak RSS.

Builds a fresh database (a SQLite file in a temp directory, and with ``--postgres`` a
PostgreSQL database created and dropped by the bench), migrates it, creates one clinic with
the service's own code, then bulk-loads ``--rows`` screenings for it exactly as
``tests/rulepack/bulk.py`` does for the 100,000-row test (encrypted like the service, flags
included; executemany on SQLite, COPY on PostgreSQL). Then it runs the real command

    screening rules impact --clinic Bench --candidate <default pack, systolic 160 → 150> --json \
        --workers N

in a child process under ``/usr/bin/time -v`` and prints its wall time and peak RSS against
the targets (< 5 minutes, < 300 MB): the largest process's (``time``'s maximum resident set
size) and the whole process tree's (the command and its worker processes, summed, sampled
twice a second from /proc). It checks that the report's count of changed screenings equals
the generator's independent count.

    python bench/impact.py                                     # SQLite, 1,000,000 rows
    python bench/impact.py --postgres postgresql+psycopg://postgres@127.0.0.1/postgres
    python bench/impact.py --rows 100000 --skip-sqlite --postgres ...
"""

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.rulepack.bulk

from api import postgres_database
from sqlalchemy import text

from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.crypto import KeyRing, generate_key_spec
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.engine import load_ruleset
from app.rulepack import service as rulepack_service
from tests.rulepack.bulk import Expected, generate, load
from tests.rulepack.packs import DEFAULT, stricter_pack

TARGET_SECONDS = 300.0
TARGET_RSS_MB = 300.0


def prepare(url: str, rows: int, keyring: KeyRing) -> Expected:
    """Migrate, create the clinic and load ``rows`` screenings; return the expected counts."""
    migrate.upgrade(migrate.make_config(database_url=url))
    engine = make_engine(url)
    ruleset = load_ruleset(DEFAULT)
    with session_scope(make_sessionmaker(engine)) as session:
        rulepack_service.store_rule_pack(session, ruleset=ruleset, now=datetime.now(UTC))
        clinic_id = apikey_service.create(
            session, clinic_name="Bench", actor=audit_service.Actor.cli(), now=datetime.now(UTC)
        ).clinic_id
    expected = Expected(keep_ids=False)
    began = time.perf_counter()
    with engine.begin() as connection:
        chunks = generate(rows, clinic_id=clinic_id, ruleset=ruleset, keyring=keyring,
                          expected=expected)  # fmt: skip
        load(connection, chunks)
    print(f"  loaded {rows:,} screenings in {time.perf_counter() - began:.0f} s")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
            connection.execute(text("CHECKPOINT"))
    engine.dispose()
    return expected


def _tree_rss_kb(root: int) -> int:
    """The summed VmRSS of ``root`` and every process descended from it (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        pid = int(status.parent.name)
        parents[pid] = int(fields.get("PPid", "0"))
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


def watch_tree(child: subprocess.Popen[bytes]) -> float:
    """Sample the process tree's RSS twice a second until it exits; the peak in MB."""
    peak = 0
    while child.poll() is None:
        peak = max(peak, _tree_rss_kb(child.pid))
        time.sleep(0.5)
    return peak / 1024


def measure(
    url: str, spec: str, candidate: Path, expected: Expected, workdir: Path, workers: int
) -> bool:
    """Run `rules impact` under /usr/bin/time; print time and peak RSS; True if both met."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")} | {
        "SCREENING_DATABASE_URL": url,
        "SCREENING_DATA_KEY": spec,
        "SCREENING_AUDIT_KEY": base64.b64encode(os.urandom(32)).decode(),
        "SCREENING_SECRETS_FILE": str(workdir / "secrets.env"),
    }
    command = [str(Path(sys.executable).with_name("screening")), "rules", "impact",
               "--clinic", "Bench", "--candidate", str(candidate), "--json",
               "--workers", str(workers)]  # fmt: skip
    began = time.perf_counter()
    out, err = workdir / f"impact-{workers}.out", workdir / f"impact-{workers}.err"
    # Files, not pipes: a report larger than a pipe's buffer would block the command.
    with out.open("wb") as stdout_file, err.open("wb") as stderr_file:
        child = subprocess.Popen(["/usr/bin/time", "-v", *command], env=env, cwd=workdir,
                                 stdout=stdout_file, stderr=stderr_file)  # fmt: skip
        tree_mb = watch_tree(child)
    elapsed = time.perf_counter() - began
    stdout, stderr = out.read_text(), err.read_text()
    if child.returncode != 0:
        raise SystemExit(f"rules impact failed:\n{stderr[-3000:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    rss_mb = int(found.group(1)) / 1024 if found else float("nan")
    report = json.loads(stdout)
    exact = report["changed"] == expected.moved_total and report["screenings"] == expected.total
    met = elapsed < TARGET_SECONDS and max(rss_mb, tree_mb) < TARGET_RSS_MB
    print(f"  rules impact --workers {workers}, load average {os.getloadavg()[0]:.1f}: "
          f"{report['screenings']:,} screenings in {elapsed:.1f} s "
          f"({report['screenings'] / elapsed:,.0f}/s), peak RSS {rss_mb:.0f} MB of the largest "
          f"process, {tree_mb:.0f} MB of all its processes together "
          f"(targets < {TARGET_SECONDS:.0f} s, < {TARGET_RSS_MB:.0f} MB: "
          f"{'met' if met else 'MISSED'})")  # fmt: skip
    print(f"  changed {report['changed']:,}, expected {expected.moved_total:,} "
          f"({'exact' if exact else 'MISMATCH'})")  # fmt: skip
    return met and exact


def run(url: str, rows: int, candidate: Path, workdir: Path, workers: list[int]) -> bool:
    """Load one database, then measure the command with each number of workers."""
    label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\n{label}: {rows:,} screenings of one clinic")
    spec = generate_key_spec("bench")
    expected = prepare(url, rows, KeyRing.parse(spec))
    results = [measure(url, spec, candidate, expected, workdir, n) for n in workers]
    return all(results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="URL of any database on the server to bench against")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[2], help="rules impact --workers, each in turn"
    )
    args = parser.parse_args()
    print(f"machine: nproc {os.cpu_count()}, Python {sys.version.split()[0]}, {time.ctime()}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    met = True
    with tempfile.TemporaryDirectory(prefix="impact-bench-") as directory:
        workdir = Path(directory)
        candidate = stricter_pack(workdir)
        if not args.skip_sqlite:
            met = (
                run(
                    f"sqlite:///{workdir / 'impact.db'}",
                    args.rows,
                    candidate,
                    workdir,
                    args.workers,
                )
                and met
            )
        if args.postgres:
            with postgres_database(args.postgres) as url:
                met = run(url, args.rows, candidate, workdir, args.workers) and met
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
