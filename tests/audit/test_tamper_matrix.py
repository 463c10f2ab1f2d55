"""Tamper matrix: every stored column that could change what a physician sees, altered as a
database owner would (no application code, triggers bypassed), is found by `audit verify`.

One real screening (an exclude and a review flag) made by the screening service, signed off
by a physician through the review service; then one alteration per case. Each case asserts
the report names the problem at the right event; the untouched baseline verifies. The last
test runs the `screening audit verify` command itself on a committed database.
"""

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.audit import verify as audit_verify
from app.crypto import field_aad
from app.db.models import AuditEvent
from app.engine import Ruleset
from app.screening import store
from tests.audit.factories import (
    RULE_PACK_SHA,
    World,
    build_reviewed_screening,
    tamper_rule_pack,
)
from tests.factories import KEYRING, NOW


def _verify(session: Session) -> audit_verify.VerifyReport:
    session.expire_all()
    return audit_verify.verify_chain(
        session, screenings=partial(store.content_digest, KEYRING), keyring=KEYRING, batch_size=7
    )


def _id(session: Session, value: uuid.UUID) -> Any:
    # SQLite stores Uuid as 32 hex characters; PostgreSQL as uuid.
    return value.hex if session.get_bind().dialect.name == "sqlite" else value


def _sql(session: Session, statement: str, **values: Any) -> None:
    converted = {k: _id(session, v) if isinstance(v, uuid.UUID) else v for k, v in values.items()}
    assert session.execute(text(statement), converted).rowcount == 1  # type: ignore[attr-defined]


def _screening(column: str, value: Any) -> Callable[[Session, World], None]:
    def tamper(session: Session, world: World) -> None:
        _sql(session, f"UPDATE screening SET {column} = :v WHERE id = :id",
             v=value(world) if callable(value) else value, id=world.screening_id)  # fmt: skip

    return tamper


def _flip(table: str, column: str) -> Callable[[Session, World], None]:
    def tamper(session: Session, world: World) -> None:
        row_id = world.screening_id if table == "screening" else world.review_id
        stored = session.execute(
            text(f"SELECT {column} FROM {table} WHERE id = :id"), {"id": _id(session, row_id)}
        ).scalar_one()
        flipped = bytearray(stored)
        flipped[-1] ^= 1
        _sql(session, f"UPDATE {table} SET {column} = :v WHERE id = :id", v=bytes(flipped),
             id=row_id)  # fmt: skip

    return tamper


def _flag(statement: str) -> Callable[[Session, World], None]:
    def tamper(session: Session, world: World) -> None:
        _sql(session, statement, id=world.screening_id)

    return tamper


def _review(column: str, value: Any) -> Callable[[Session, World], None]:
    def tamper(session: Session, world: World) -> None:
        _sql(session, f"UPDATE review SET {column} = :v WHERE id = :id",
             v=value(world) if callable(value) else value, id=world.review_id)  # fmt: skip

    return tamper


def _reencrypt_note(session: Session, world: World) -> None:
    """A key holder writes another note, correctly encrypted and bound to the row."""
    aad = field_aad("review", "note_ct", world.review_id)
    _, forged = KEYRING.encrypt(b"Cleared: no concerns.", aad)
    _review("note_ct", forged)(session, world)


def _delete_review(session: Session, world: World) -> None:
    _sql(session, "DELETE FROM review WHERE id = :id", id=world.review_id)


def _forge_review(session: Session, world: World) -> None:
    """A second, "cleared" review inserted with SQL: no review.recorded event vouches for it."""
    aad_id = uuid.uuid4()
    kid, note = KEYRING.encrypt(b"", field_aad("review", "note_ct", aad_id))
    _sql(
        session,
        "INSERT INTO review (id, screening_id, clinic_id, reviewer_id, disposition, "
        "override_reason, note_ct, key_id, created_at) SELECT :new, screening_id, clinic_id, "
        "reviewer_id, 'cleared', 'specialist_cleared', :note, :kid, created_at FROM review "
        "WHERE id = :id",
        new=aad_id, note=note, kid=kid, id=world.review_id,
    )  # fmt: skip


def _forge_screening(session: Session, world: World) -> None:
    """A copy of the screening under a new id, inserted with SQL: no event names it."""
    _sql(
        session,
        "INSERT INTO screening (id, clinic_id, created_at, as_of_date, decision, has_exclude, "
        "rule_pack_sha256, source, key_id, subject_ct, answers_ct, result_ct) SELECT :new, "
        "clinic_id, created_at, as_of_date, 'candidate', false, rule_pack_sha256, source, "
        "key_id, subject_ct, answers_ct, result_ct FROM screening WHERE id = :id",
        new=uuid.uuid4(), id=world.screening_id,
    )  # fmt: skip


def _edit_pack(session: Session, world: World) -> None:
    tamper_rule_pack(session, world.pack_sha256, '"Heart failure"', '"Heart trouble (minor)"')


DIGEST = "does not match the digest recorded by this event"
FLAGS = "screening_flag rows do not match the stored result's flags"
REVIEW = "stored review does not match the digest recorded by this event"
CASES: dict[str, tuple[Callable[[Session, World], None], str, str | None]] = {
    # screening columns (PHI ciphertexts, metadata in the digest, derived from the result)
    "screening.decision": (_screening("decision", "candidate"), DIGEST, "screening"),
    "screening.has_exclude": (
        _screening("has_exclude", False),
        "has_exclude does not match the stored result's flags",
        "screening",
    ),
    "screening.as_of_date": (_screening("as_of_date", date(2020, 1, 1)), DIGEST, "screening"),
    "screening.clinic_id": (
        _screening("clinic_id", lambda w: w.other_clinic_id),
        DIGEST,
        "screening",
    ),
    "screening.rule_pack_sha256": (
        _screening("rule_pack_sha256", RULE_PACK_SHA),
        DIGEST,
        "screening",
    ),
    "screening.source": (
        _screening("source", "form"),
        "source differs from its creation event",
        "screening",
    ),
    "screening.key_id": (_screening("key_id", "other"), "does not decrypt", "screening"),
    "screening.subject_ct": (_flip("screening", "subject_ct"), "does not decrypt", "screening"),
    "screening.answers_ct": (_flip("screening", "answers_ct"), "does not decrypt", "screening"),
    "screening.result_ct": (_flip("screening", "result_ct"), "does not decrypt", "screening"),
    "screening.forged": (
        _forge_screening,
        "screening row(s) have no screening.created event",
        None,
    ),
    # screening_flag: edited, deleted, added
    "screening_flag.status": (
        _flag(
            "UPDATE screening_flag SET status = 'unknown' WHERE screening_id = :id "
            "AND rule = 'heart_failure'"
        ),
        FLAGS,
        "screening",
    ),
    "screening_flag.severity": (
        _flag(
            "UPDATE screening_flag SET severity = 'review' WHERE screening_id = :id "
            "AND rule = 'heart_failure'"
        ),
        FLAGS,
        "screening",
    ),
    "screening_flag.rule": (
        _flag(
            "UPDATE screening_flag SET rule = 'under_18' WHERE screening_id = :id "
            "AND rule = 'heart_failure'"
        ),
        FLAGS,
        "screening",
    ),
    "screening_flag.deleted": (
        _flag("DELETE FROM screening_flag WHERE screening_id = :id AND rule = 'heart_failure'"),
        FLAGS,
        "screening",
    ),
    "screening_flag.added": (
        _flag(
            "INSERT INTO screening_flag (screening_id, rule, severity, status) "
            "VALUES (:id, 'schizophrenia', 'exclude', 'fired')"
        ),
        FLAGS,
        "screening",
    ),
    # review: every column of a sign-off, deleted, forged
    "review.disposition": (
        _review("disposition", "cleared"),
        "disposition or override reason altered",
        "review",
    ),
    "review.override_reason": (
        _review("override_reason", "specialist_cleared"),
        "disposition or override reason altered",
        "review",
    ),
    "review.note_ct": (_reencrypt_note, REVIEW, "review"),
    "review.note_ct bit": (_flip("review", "note_ct"), REVIEW, "review"),
    "review.reviewer_id": (_review("reviewer_id", lambda w: w.colleague_id), REVIEW, "review"),
    "review.created_at": (_review("created_at", NOW - timedelta(days=3)), REVIEW, "review"),
    "review.clinic_id": (_review("clinic_id", lambda w: w.other_clinic_id), REVIEW, "review"),
    "review.key_id": (_review("key_id", "other"), REVIEW, "review"),
    "review.deleted": (_delete_review, "missing (deleted?)", "review"),
    "review.forged": (_forge_review, "review row(s) have no review.recorded event", None),
    # rule_pack: content altered behind the append-only trigger
    "rule_pack.content": (_edit_pack, "stored content does not hash to its sha256", "pack"),
}


def _expected_seq(session: Session, world: World, kind: str | None) -> int | None:
    if kind is None:
        return None
    action, target = {
        "screening": ("screening.created", str(world.screening_id)),
        "review": ("review.recorded", str(world.screening_id)),
        "pack": ("rule_pack.loaded", world.pack_sha256),
    }[kind]
    return session.scalar(
        select(AuditEvent.seq)
        .where(AuditEvent.action == action, AuditEvent.target_id == target)
        .order_by(AuditEvent.seq)
        .limit(1)
    )


def test_untouched_rows_verify(session: Session, ruleset: Ruleset) -> None:
    build_reviewed_screening(session, ruleset)
    report = _verify(session)
    assert report.ok, report.problem
    assert report.screenings_checked >= 1


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_detected(session: Session, ruleset: Ruleset, case: str) -> None:
    world = build_reviewed_screening(session, ruleset)
    tamper, problem, kind = CASES[case]
    expected_seq = _expected_seq(session, world, kind)
    if kind == "review":  # the review row is checked at its review.recorded event
        expected_seq = session.scalar(
            select(AuditEvent.seq).where(AuditEvent.action == "review.recorded")
            .order_by(AuditEvent.seq.desc()).limit(1)
        )  # fmt: skip
    tamper(session, world)
    report = _verify(session)
    assert report.ok is False, case
    assert problem in (report.problem or ""), report.problem
    assert report.first_bad_seq == expected_seq, report.problem
