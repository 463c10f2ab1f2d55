"""Bench: the screening list at 1,000,000 stored screenings (issue 3), SQLite and PostgreSQL.

Builds a fresh database (a SQLite file in a temp directory, and with ``--postgres`` a
PostgreSQL database created and dropped by the bench), migrates it, creates 20 clinics with
an API key each through the service's own code, then bulk-loads screenings spread over a year
across the clinics: every row encrypted like the service does (subject, answers and result
JSON under AES-256-GCM with the row's AAD), ``screening_flag`` rows for every flag, and
physician reviews for most older ``needs_review`` screenings and a few recent ones. Loading
uses Core ``executemany`` on SQLite and ``COPY`` on PostgreSQL.

Then it starts the real service (`screening serve`, production settings) and measures, from
one keep-alive HTTP client on 127.0.0.1:

    first page   GET /v1/screenings?decision=needs_review&reviewed=false&limit=50
    cursor walk  the same, following next_cursor for --pages pages

and prints p50/p99 against the target (p99 ≤ 20 ms), plus the query plan of both queries.

    python bench/scale.py                                      # SQLite only
    python bench/scale.py --postgres postgresql+psycopg://postgres@127.0.0.1/postgres
    python bench/scale.py --rows 100000 --skip-sqlite --postgres ...
"""

import argparse
import base64
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from api import HOST, free_port, postgres_database, process, wait_until_up
from sqlalchemy import event, insert, text

from app.apikey import service as apikey_service
from app.audit import canonical
from app.audit import service as audit_service
from app.crypto import KeyRing, field_aad, generate_key_spec
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Review, Screening, ScreeningFlag
from app.db.unit import session_scope
from app.engine import evaluate, load_ruleset, validate_answers
from app.rulepack import service as rulepack_service
from app.screening import listing
from app.screening.schemas import ANSWERS_EXAMPLE
from app.settings import default_rules_path

CHUNK = 10_000
TARGET_P99_MS = 20.0
QUERY = "/v1/screenings?decision=needs_review&reviewed=false&limit=50"
BASE_ANSWERS: dict[str, Any] = ANSWERS_EXAMPLE | {"conditions": ["migraine", "chronic_pain"]}
NORMAL_BP = {"hypertension": "no", "bp_controlled": None, "systolic_bp": 121, "diastolic_bp": 78}
# (share of rows, answer changes): about 45 % candidate, 40 % needs review, 15 % not candidate.
MIX: tuple[tuple[float, dict[str, Any]], ...] = (
    (0.45, NORMAL_BP),
    (0.40, {}),
    (0.15, {"heart_failure": "yes"}),
)


def templates(as_of: date) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:
    """(share, answers, result) for each decision, evaluated by the real rule pack."""
    ruleset = load_ruleset(default_rules_path())
    out = []
    for share, change in MIX:
        answers = {k: v for k, v in (BASE_ANSWERS | change).items() if v is not None}
        validated = validate_answers(ruleset, answers, as_of=as_of)
        out.append((share, validated.values, evaluate(ruleset, validated, as_of=as_of).to_dict()))
    return out


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def generate(
    rows: int, clinic_ids: list[uuid.UUID], keyring: KeyRing, pack_sha256: str, seed: int = 7
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Yield chunks of (screening, flag, review) rows, oldest first, over the past year."""
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=365)
    step = (end - start) / rows
    recent = end - timedelta(days=30)
    as_of = end.date()
    kinds = templates(as_of)
    weights = [share for share, _, _ in kinds]
    answers_bytes = [_json(answers) for _, answers, _ in kinds]
    kid = keyring.current_kid
    screenings: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = []
    reviews: list[dict[str, Any]] = []
    for index in range(rows):
        sid = uuid.UUID(int=rng.getrandbits(128), version=4)
        clinic_id = clinic_ids[index % len(clinic_ids)]
        created_at = start + step * index + timedelta(microseconds=rng.randrange(1000))
        kind = rng.choices(range(len(kinds)), weights)[0]
        result = kinds[kind][2]
        subject = {"reference": f"MRN-{index:07d}"}
        body = {
            "id": str(sid),
            "created_at": canonical.format_datetime(created_at),
            "subject": subject,
            "review": None,
            **result,
        }
        screenings.append(
            {
                "id": sid,
                "clinic_id": clinic_id,
                "created_at": created_at,
                "as_of_date": created_at.date(),
                "decision": result["decision"],
                "has_exclude": any(f["severity"] == "exclude" for f in result["flags"]),
                "rule_pack_sha256": pack_sha256,
                "source": "api",
                "key_id": kid,
                "subject_ct": keyring.encrypt(
                    _json(subject), field_aad("screening", "subject_ct", sid)
                )[1],
                "answers_ct": keyring.encrypt(
                    answers_bytes[kind], field_aad("screening", "answers_ct", sid)
                )[1],
                "result_ct": keyring.encrypt(_json(body), field_aad("screening", "result_ct", sid))[
                    1
                ],
            }
        )
        for flag in result["flags"]:
            flags.append(
                {
                    "screening_id": sid,
                    "rule": flag["rule"],
                    "severity": flag["severity"],
                    "status": flag["status"],
                }
            )
        reviewed_share = 0.95 if created_at < recent else 0.2
        if result["decision"] == "needs_review" and rng.random() < reviewed_share:
            review_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            reviews.append(
                {
                    "id": review_id,
                    "screening_id": sid,
                    "clinic_id": clinic_id,
                    "reviewer_id": None,
                    "disposition": "cleared",
                    "override_reason": None,
                    "note_ct": keyring.encrypt(
                        b"Discussed with the patient.", field_aad("review", "note_ct", review_id)
                    )[1],
                    "key_id": kid,
                    "created_at": created_at + timedelta(hours=20),
                }
            )
        if len(screenings) == CHUNK:
            yield screenings, flags, reviews
            screenings, flags, reviews = [], [], []
    if screenings:
        yield screenings, flags, reviews


def setup(url: str, clinics: int) -> tuple[list[uuid.UUID], list[str], str]:
    """Migrate and create the clinics and keys with the service's code; store the rule pack."""
    migrate.upgrade(migrate.make_config(database_url=url))
    engine = make_engine(url)
    clinic_ids, keys = [], []
    now = datetime.now(UTC)
    ruleset = load_ruleset(default_rules_path())
    with session_scope(make_sessionmaker(engine)) as session:
        rulepack_service.store_rule_pack(session, ruleset=ruleset, now=now)
        for number in range(clinics):
            created = apikey_service.create(
                session,
                clinic_name=f"Clinic {number:02d}",
                actor=audit_service.Actor.cli(),
                now=now,
            )
            clinic_ids.append(created.clinic_id)
            keys.append(created.key)
    engine.dispose()
    return clinic_ids, keys, ruleset.sha256


def _copy(connection: Any, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    cursor = connection.connection.driver_connection.cursor()
    with cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])


def load(url: str, rows: int, clinic_ids: list[uuid.UUID], keyring: KeyRing, sha: str) -> None:
    """Bulk-load ``rows`` screenings (COPY on PostgreSQL, executemany on SQLite)."""
    engine = make_engine(url)
    is_postgres = engine.dialect.name == "postgresql"
    began = time.perf_counter()
    totals = [0, 0, 0]
    with engine.begin() as connection:
        for screenings, flags, reviews in generate(rows, clinic_ids, keyring, sha):
            if is_postgres:
                _copy(connection, "screening", screenings)
                _copy(connection, "screening_flag", flags)
                _copy(connection, "review", reviews)
            else:
                connection.execute(insert(Screening), screenings)
                if flags:
                    connection.execute(insert(ScreeningFlag), flags)
                if reviews:
                    connection.execute(insert(Review), reviews)
            totals = [totals[0] + len(screenings), totals[1] + len(flags), totals[2] + len(reviews)]
    elapsed = time.perf_counter() - began
    print(
        f"  loaded {totals[0]:,} screenings, {totals[1]:,} flags, {totals[2]:,} reviews "
        f"in {elapsed:.1f} s ({totals[0] / elapsed:,.0f} screenings/s, encryption included)"
    )
    if is_postgres:
        # What autovacuum does shortly after a bulk load (the planner needs the statistics),
        # then a CHECKPOINT, so the timed requests do not compete with the checkpointer
        # writing out the load's gigabytes of dirty pages (the steady state, not the load).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
            connection.execute(text("CHECKPOINT"))
    engine.dispose()


def explain(url: str, clinic_id: uuid.UUID, keyring: KeyRing) -> None:
    """Print the plan of the list query the service runs: first page and a later page."""
    engine = make_engine(url)
    captured: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM screening" in statement and "LIMIT" in statement:
            captured.append((statement, params))

    factory = make_sessionmaker(engine)
    actor = audit_service.Actor.cli()
    cursor = None
    for _ in range(10):
        with factory() as session:
            page = listing.list_screenings(
                session,
                keyring=keyring,
                clinic_id=clinic_id,
                actor=actor,
                filters=listing.ListFilter("needs_review", False, cursor=cursor),
            )
            session.rollback()  # the plan only: no audit event is kept
        cursor = page.next_cursor
    is_postgres = engine.dialect.name == "postgresql"
    later = [item for item in captured if "created_at <" in item[0]]
    for label, (statement, params) in (("first page", captured[0]), ("page 10", later[-1])):
        prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " if is_postgres else "EXPLAIN QUERY PLAN "
        raw = engine.raw_connection()
        try:
            db_cursor = raw.cursor()
            db_cursor.execute(prefix + statement, params)
            lines = [
                str(row[0]) if is_postgres else f"{'  ' * (row[1] > 0)}{row[-1]}"
                for row in db_cursor.fetchall()
            ]
            raw.rollback()
        finally:
            raw.close()
        print(f"  plan, {label}:")
        for line in lines:
            print(f"    {line}")
    engine.dispose()


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def measure(base: str, keys: list[str], requests: int, walks: int, pages: int) -> bool:
    """Time the first page and cursor walks; print p50/p99; True if both meet the target."""
    first: list[float] = []
    walk: list[float] = []
    walked = 0
    with httpx.Client(base_url=base, timeout=30.0) as client:
        for number in range(20):  # warm-up: connection, caches
            client.get(QUERY, headers={"Authorization": f"Bearer {keys[number % len(keys)]}"})
        for number in range(requests):
            headers = {"Authorization": f"Bearer {keys[number % len(keys)]}"}
            began = time.perf_counter()
            response = client.get(QUERY, headers=headers)
            first.append(time.perf_counter() - began)
            assert response.status_code == 200, response.text
            assert response.json()["items"], "no unreviewed needs_review screening"
        for number in range(walks):
            headers = {"Authorization": f"Bearer {keys[number % len(keys)]}"}
            cursor = None
            for _ in range(pages):
                url = QUERY + (f"&cursor={cursor}" if cursor else "")
                began = time.perf_counter()
                response = client.get(url, headers=headers)
                walk.append(time.perf_counter() - began)
                assert response.status_code == 200, response.text
                body = response.json()
                walked += len(body["items"])
                cursor = body["next_cursor"]
                if cursor is None:
                    break
    met = True
    for label, values in ((f"first page x{len(first)}", first), (f"walk pages x{len(walk)}", walk)):
        p50, p99 = statistics.median(values) * 1e3, percentile(values, 0.99) * 1e3
        ok = p99 <= TARGET_P99_MS
        met = met and ok
        print(
            f"  {label:<20} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {max(values) * 1e3:6.1f} ms"
            f"  (target p99 ≤ {TARGET_P99_MS:g} ms: {'met' if ok else 'MISSED'})"
        )
    print(f"  cursor walks: {walks} walks of up to {pages} pages, {walked:,} screenings returned")
    return met


def run(url: str, args: argparse.Namespace, workdir: Path) -> bool:
    """Load, explain and measure one database."""
    label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\n{label}: {args.rows:,} screenings across {args.clinics} clinics")
    spec = generate_key_spec("bench")
    keyring = KeyRing.parse(spec)
    clinic_ids, keys, sha = setup(url, args.clinics)
    load(url, args.rows, clinic_ids, keyring, sha)
    explain(url, clinic_ids[0], keyring)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")}
    env |= {
        "SCREENING_ENVIRONMENT": "prod",
        "SCREENING_DATABASE_URL": url,
        "SCREENING_DATA_KEY": spec,
        "SCREENING_AUDIT_KEY": base64.b64encode(os.urandom(32)).decode(),
        "SCREENING_SECRETS_FILE": str(workdir / "secrets.env"),
        "SCREENING_LOG_LEVEL": "WARNING",
        # capacity is measured here, not the per-credential rate limit (README)
        "SCREENING_RATE_LIMIT_PER_SECOND": "100000",
        "SCREENING_RATE_LIMIT_BURST": "100000",
    }
    port = free_port()
    log = workdir / f"service-{label}.log"
    serve = [str(Path(sys.executable).with_name("screening")), "serve", "--host", HOST]
    with process([*serve, "--port", str(port)], env=env, cwd=workdir, log=log):
        wait_until_up(f"http://{HOST}:{port}/readyz", log)
        return measure(f"http://{HOST}:{port}", keys[:5], args.requests, args.walks, args.pages)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clinics", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300, help="first-page requests")
    parser.add_argument("--walks", type=int, default=10, help="cursor walks")
    parser.add_argument("--pages", type=int, default=20, help="pages per cursor walk")
    parser.add_argument("--postgres", help="URL of any database on the server to bench against")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print(f"machine: nproc {os.cpu_count()}, Python {sys.version.split()[0]}, {time.ctime()}")
    met = True
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as directory:
        workdir = Path(directory)
        if not args.skip_sqlite:
            met = run(f"sqlite:///{workdir / 'scale.db'}", args, workdir) and met
        if args.postgres:
            with postgres_database(args.postgres) as url:
                met = run(url, args, workdir) and met
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
