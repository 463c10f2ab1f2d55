"""Generate stored screenings in bulk for impact tests and bench/impact.py (bench/scale.py's way).

Rows are built as the service stores them (answers, subject and result JSON encrypted with
the row's AAD, a ``screening_flag`` row per fired or unknown rule), from answer sets that
vary the blood pressure readings and heart failure; each distinct answer set is evaluated
once by the real pack. Loading is Core ``executemany`` on SQLite and ``COPY`` on PostgreSQL.
The generator also counts, independently of the impact code, the screenings a 160 → 150
systolic cut-off must move: systolic 150-159 and not already ``not_candidate``.
"""

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert

from app.audit import canonical
from app.crypto import KeyRing, field_aad
from app.db.models import Screening, ScreeningFlag
from app.engine import Ruleset, evaluate, validate_answers
from tests.factories import CANDIDATE_ANSWERS

CHUNK = 10_000
START = datetime(2025, 7, 1, tzinfo=UTC)


@dataclass
class Expected:
    """What a systolic 160 → 150 candidate must report, counted while generating."""

    moved: set[str] = field(default_factory=set)
    moved_total: int = 0
    keep_ids: bool = True
    total: int = 0


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class Templates:
    """Each distinct answer set evaluated once: (answers JSON, result, has_exclude)."""

    def __init__(self, ruleset: Ruleset, as_of: date) -> None:
        self._ruleset, self._as_of = ruleset, as_of
        self._cache: dict[tuple[int, int, str], tuple[bytes, dict[str, Any]]] = {}

    def get(
        self, systolic: int, diastolic: int, heart_failure: str
    ) -> tuple[bytes, dict[str, Any]]:
        key = (systolic, diastolic, heart_failure)
        found = self._cache.get(key)
        if found is None:
            answers = CANDIDATE_ANSWERS | {
                "systolic_bp": systolic, "diastolic_bp": diastolic, "heart_failure": heart_failure
            }  # fmt: skip
            validated = validate_answers(self._ruleset, answers, as_of=self._as_of)
            result = evaluate(self._ruleset, validated, as_of=self._as_of).to_dict()
            found = self._cache[key] = (_json(validated.values), result)
        return found


def generate(
    rows: int,
    *,
    clinic_id: uuid.UUID,
    ruleset: Ruleset,
    keyring: KeyRing,
    expected: Expected,
    seed: int = 13,
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Yield chunks of (screening rows, flag rows), oldest first, one every few minutes."""
    rng = random.Random(seed)
    templates = Templates(ruleset, START.date())
    kid = keyring.current_kid
    screenings: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = []
    for index in range(rows):
        sid = uuid.UUID(int=rng.getrandbits(128), version=4)
        systolic, diastolic = rng.randrange(100, 200), rng.randrange(60, 110)
        heart_failure = "yes" if rng.random() < 0.15 else "no"
        answers, result = templates.get(systolic, diastolic, heart_failure)
        created_at = START + timedelta(seconds=180 * index)
        body = {"id": str(sid), "created_at": canonical.format_datetime(created_at),
                "subject": {"reference": f"MRN-{index:07d}"}, "review": None, **result}  # fmt: skip
        screenings.append({
            "id": sid, "clinic_id": clinic_id, "created_at": created_at,
            "as_of_date": created_at.date(), "decision": result["decision"],
            "has_exclude": any(f["severity"] == "exclude" for f in result["flags"]),
            "rule_pack_sha256": ruleset.sha256, "source": "api", "key_id": kid,
            "subject_ct": keyring.encrypt(
                _json(body["subject"]), field_aad("screening", "subject_ct", sid))[1],
            "answers_ct": keyring.encrypt(answers, field_aad("screening", "answers_ct", sid))[1],
            "result_ct": keyring.encrypt(_json(body), field_aad("screening", "result_ct", sid))[1],
        })  # fmt: skip
        flags.extend(
            {"screening_id": sid, "rule": f["rule"], "severity": f["severity"],
             "status": f["status"]}
            for f in result["flags"]
        )  # fmt: skip
        expected.total += 1
        if 150 <= systolic <= 159 and result["decision"] != "not_candidate":
            expected.moved_total += 1
            if expected.keep_ids:
                expected.moved.add(str(sid))
        if len(screenings) == CHUNK:
            yield screenings, flags
            screenings, flags = [], []
    if screenings:
        yield screenings, flags


def _copy(connection: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])


def load(
    connection: Connection, chunks: Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]
) -> None:
    """Insert the generated rows on ``connection`` (in its transaction)."""
    is_postgres = connection.dialect.name == "postgresql"
    for screenings, flags in chunks:
        if is_postgres:
            _copy(connection, "screening", screenings)
            if flags:
                _copy(connection, "screening_flag", flags)
        else:
            connection.execute(insert(Screening), screenings)
            if flags:
                connection.execute(insert(ScreeningFlag), flags)
