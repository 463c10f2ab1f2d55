"""Bench: `verify_chain` over a valid chain of N audit events (default 1,000,000).

Builds a fresh database (SQLite file, or a PostgreSQL database created and dropped by the
bench), bulk-inserts a valid hash chain plus the encrypted screenings its events reference,
then times a full verification (every hash, every link, every screening digest).

    python bench/audit_verify.py                                   # SQLite, 1,000,000 events
    python bench/audit_verify.py --postgres postgresql+psycopg://postgres@127.0.0.1/postgres
    python bench/audit_verify.py --events 100000 --events-per-screening 10
    python bench/audit_verify.py --workers 1 2        # sequential, then 2 processes
"""

import argparse
import base64
import os
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, insert, make_url, text, update

from app import crypto
from app.audit import canonical
from app.audit import parallel as audit_parallel
from app.audit.service import HASHED_COLUMNS, hashed_fields
from app.db import migrate
from app.db.engine import make_engine
from app.db.models import AuditEvent, AuditHead, Clinic, RulePack, Screening
from app.screening import store

KEY_SPEC = "bench:" + base64.b64encode(bytes(32)).decode()
KEYRING = crypto.KeyRing.parse(KEY_SPEC)
PACK = "ab" * 32
CHUNK = 10_000


def _screening_rows(clinic_id: uuid.UUID, count: int) -> tuple[list[dict[str, Any]], list[str]]:
    rows, digests = [], []
    values = {
        "subject_ct": {"reference": "MRN-0000"},
        "answers_ct": {"pregnant": "no", "systolic_bp": 120},
        "result_ct": {"decision": "candidate", "flags": []},
    }
    for _ in range(count):
        sid = uuid.uuid4()
        row: dict[str, Any] = {
            "id": sid,
            "clinic_id": clinic_id,
            "created_at": datetime.now(UTC),
            "as_of_date": date(2026, 6, 15),
            "decision": "candidate",
            "has_exclude": False,
            "rule_pack_sha256": PACK,
            "source": "api",
            "key_id": KEYRING.current_kid,
        }
        for column, value in values.items():
            aad = crypto.field_aad("screening", column, sid)
            row[column] = KEYRING.encrypt(canonical.dumps(value), aad)[1]
        rows.append(row)
        digests.append(
            canonical.screening_content_digest(
                clinic_id=clinic_id,
                as_of=date(2026, 6, 15),
                decision="candidate",
                rule_pack_sha256=PACK,
                subject=values["subject_ct"],
                answers=values["answers_ct"],
                result=values["result_ct"],
            )
        )
    return rows, digests


def populate(engine: Engine, events: int, per_screening: int) -> None:
    clinic_id = uuid.uuid4()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    screenings, digests = _screening_rows(clinic_id, (events + per_screening - 1) // per_screening)
    with engine.begin() as connection:
        connection.execute(
            insert(Clinic),
            [{"id": clinic_id, "name": "Bench", "form_origins": [], "created_at": start}],
        )
        connection.execute(
            insert(RulePack),
            [{"sha256": PACK, "pack_id": "p", "version": "1", "content": "{}", "loaded_at": start}],
        )
        for i in range(0, len(screenings), CHUNK):
            connection.execute(insert(Screening), screenings[i : i + CHUNK])
    prev = canonical.GENESIS_HASH
    batch: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for seq in range(1, events + 1):
            index = (seq - 1) // per_screening
            row: dict[str, Any] = {
                "seq": seq,
                "occurred_at": start + timedelta(milliseconds=seq),
                "actor_type": "api_key",
                "actor_id": "key-1",
                "clinic_id": clinic_id,
                "action": "screening.created"
                if (seq - 1) % per_screening == 0
                else "screening.read",
                "target_type": "screening",
                "target_id": str(screenings[index]["id"]),
                "target_sha256": digests[index],
                "outcome": "success",
                "request_id": f"req-{seq}",
                "ruleset_sha256": PACK,
                "detail": {"n": seq % 7},
            }
            row["prev_hash"] = prev
            row["hash"] = prev = canonical.chain_hash(
                prev, hashed_fields([row[name] for name in HASHED_COLUMNS])
            )
            batch.append(row)
            if len(batch) == CHUNK:
                connection.execute(insert(AuditEvent), batch)
                batch = []
        if batch:
            connection.execute(insert(AuditEvent), batch)
        connection.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=events, hash=prev))


def run(url: str, events: int, per_screening: int, workers: list[int]) -> None:
    migrate.upgrade(migrate.make_config(database_url=url))
    engine = make_engine(url)
    began = time.perf_counter()
    populate(engine, events, per_screening)
    print(f"populated {events:,} events in {time.perf_counter() - began:.1f} s")
    engine.dispose()
    for count in workers:
        # What `screening audit verify --workers N` runs: read-only engine, N processes
        # verifying seq ranges (N = 1: one sequential walk).
        began = time.perf_counter()
        report = audit_parallel.verify_chain_parallel(
            url, key_spec=KEY_SPEC, content_digest=store.content_digest, workers=count
        )
        elapsed = time.perf_counter() - began
        assert report.ok, report.problem
        print(
            f"{engine.dialect.name}, {count} worker(s): verified {report.count:,} events and "
            f"{report.screenings_checked:,} screenings in {elapsed:.1f} s "
            f"({report.count / elapsed:,.0f} events/s; load avg {os.getloadavg()[0]:.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--events-per-screening", type=int, default=20)
    parser.add_argument("--postgres", help="URL of any database on the server to bench against")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[min(os.cpu_count() or 1, 4)],
        help="verify once per value with that many processes (e.g. --workers 1 2)",
    )
    args = parser.parse_args()
    if args.postgres:
        name = f"audit_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            make_url(args.postgres).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            run(url, args.events, args.events_per_screening, args.workers)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    with tempfile.TemporaryDirectory() as directory:
        path = f"sqlite:///{Path(directory) / 'bench.db'}"
        run(path, args.events, args.events_per_screening, args.workers)


if __name__ == "__main__":
    main()
