"""Tamper matrix: every alteration a database owner can make is detected and names its seq."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from app import crypto
from app.audit import canonical
from app.audit import verify as audit_verify
from app.audit.checkpoint import Checkpoint, make_checkpoint
from app.audit.service import HASHED_COLUMNS, hashed_fields
from app.db.models import AuditEvent, Screening, ScreeningFlag
from app.screening import store
from tests.audit import factories
from tests.audit.factories import KEYRING, build_chain, disable_audit_triggers, head_seq

AUDIT_KEY = b"k" * 32
# 4 screenings x (1 created + 2 reads) = 12 events; seq 4 is the second screening's creation.
EVENTS = 12
K = 4


def _verify(session: Session, **kwargs: Any) -> audit_verify.VerifyReport:
    keyring = kwargs.pop("keyring", KEYRING)
    screenings = None if keyring is None else partial(store.content_digest, keyring)
    return audit_verify.verify_chain(session, batch_size=5, screenings=screenings, **kwargs)


def _update_event(session: Session, at_seq: int, **values: Any) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    statement = text(f"UPDATE audit_event SET {assignments} WHERE seq = :at_seq")
    session.execute(statement, {**values, "at_seq": at_seq})


def _rehash_from(session: Session, start: int) -> None:
    """Recompute every hash from `start` on and move the head: an attacker without the key."""
    columns = [getattr(AuditEvent, name) for name in HASHED_COLUMNS]
    prev = session.execute(select(AuditEvent.hash).where(AuditEvent.seq == start - 1)).scalar()
    prev = prev or canonical.GENESIS_HASH
    rows = session.execute(select(*columns).where(AuditEvent.seq >= start).order_by(AuditEvent.seq))
    for values in rows.all():
        new_hash = canonical.chain_hash(prev, hashed_fields(values))
        _update_event(session, values[0], prev_hash=prev, hash=new_hash)
        prev = new_hash
    session.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})


class TestUntouched:
    def test_untouched_chain_verifies(self, session: Session) -> None:
        build_chain(session)
        report = _verify(session)
        assert report.ok, report.problem
        assert (report.count, report.head_seq, report.screenings_checked) == (EVENTS, EVENTS, 4)
        assert report.first_bad_seq is None

    def test_empty_chain_verifies(self, session: Session) -> None:
        report = _verify(session)
        assert (report.ok, report.count) == (True, 0)

    def test_progress_is_reported_per_batch(self, session: Session) -> None:
        build_chain(session)
        calls: list[tuple[int, int]] = []
        _verify(session, progress=lambda done, total: calls.append((done, total)))
        assert calls == [(5, EVENTS), (10, EVENTS), (12, EVENTS)]


FIELD_CHANGES: dict[str, Any] = {
    "occurred_at": datetime(2020, 1, 1, tzinfo=UTC),
    "actor_type": "system",
    "actor_id": "someone-else",
    "action": "screening.listed",
    "target_type": "review",
    "target_id": "00000000-0000-0000-0000-000000000000",
    "target_sha256": "f" * 64,
    "outcome": "denied",
    "request_id": "req-forged",
    "ruleset_sha256": "e" * 64,
    "detail": json.dumps({"decision": "not_candidate"}),
    "prev_hash": "a" * 64,
    "hash": "b" * 64,
}


class TestTamperEvent:
    @pytest.mark.parametrize("column", sorted(FIELD_CHANGES))
    def test_changed_field_is_detected_at_its_seq(self, session: Session, column: str) -> None:
        build_chain(session)
        disable_audit_triggers(session)
        value = FIELD_CHANGES[column]
        if column == "occurred_at" and session.get_bind().dialect.name == "sqlite":
            value = value.replace(tzinfo=None)
        _update_event(session, K, **{column: value})
        report = _verify(session)
        assert (report.ok, report.first_bad_seq) == (False, K), report.problem

    def test_changed_clinic_is_detected(self, session: Session) -> None:
        build_chain(session)
        other = factories.make_clinic(session, "Clinic B")
        disable_audit_triggers(session)
        _update_event(session, K, clinic_id=_db_id(session, other.id))
        assert _verify(session).first_bad_seq == K

    def test_changed_field_with_recomputed_hash_is_detected(self, session: Session) -> None:
        build_chain(session)
        disable_audit_triggers(session)
        _update_event(session, K, actor_id="someone-else")
        row = session.execute(
            select(*[getattr(AuditEvent, n) for n in HASHED_COLUMNS], AuditEvent.prev_hash).where(
                AuditEvent.seq == K
            )
        ).one()
        _update_event(session, K, hash=canonical.chain_hash(row[-1], hashed_fields(row[:-1])))
        report = _verify(session)
        assert (report.ok, report.first_bad_seq) == (False, K), report.problem
        assert "rewritten" in (report.problem or "")

    def test_deleted_middle_event_is_detected(self, session: Session) -> None:
        build_chain(session)
        disable_audit_triggers(session)
        session.execute(text("DELETE FROM audit_event WHERE seq = :k"), {"k": K})
        report = _verify(session)
        assert (report.ok, report.first_bad_seq) == (False, K)
        assert "missing" in (report.problem or "")

    def test_swapped_events_are_detected(self, session: Session) -> None:
        build_chain(session)
        disable_audit_triggers(session)
        for old, new in ((K, -1), (K + 3, K), (-1, K + 3)):
            _update_event(session, old, seq=new)
        assert _verify(session).first_bad_seq == K

    def test_truncated_tail_with_head_left_is_detected(self, session: Session) -> None:
        build_chain(session)
        disable_audit_triggers(session)
        session.execute(text("DELETE FROM audit_event WHERE seq > 9"))
        report = _verify(session)
        assert (report.ok, report.first_bad_seq) == (False, 10)

    def test_head_moved_back_is_detected(self, session: Session) -> None:
        build_chain(session)
        last = session.execute(text("SELECT hash FROM audit_event WHERE seq = 9")).scalar()
        session.execute(text("UPDATE audit_head SET seq = 9, hash = :h"), {"h": last})
        report = _verify(session)
        assert (report.ok, report.first_bad_seq) == (False, 10)
        assert "beyond audit_head" in (report.problem or "")


class TestCheckpoint:
    def test_truncated_tail_and_head_is_detected_by_checkpoint(self, session: Session) -> None:
        build_chain(session)
        cp = make_checkpoint(session, key=AUDIT_KEY)
        disable_audit_triggers(session)
        cut_off = session.execute(text(
            "SELECT target_id FROM audit_event WHERE seq > 9 AND action = 'screening.created'"
        )).scalars().all()  # fmt: skip
        session.execute(text("DELETE FROM audit_event WHERE seq > 9"))
        last = session.execute(text("SELECT hash FROM audit_event WHERE seq = 9")).scalar()
        session.execute(text("UPDATE audit_head SET seq = 9, hash = :h"), {"h": last})
        assert "no screening.created event" in (_verify(session).problem or "")  # its row stays
        for target_id in cut_off:  # a thorough attacker deletes those screenings too
            gone = uuid.UUID(target_id)
            session.execute(delete(ScreeningFlag).where(ScreeningFlag.screening_id == gone))
            session.execute(delete(Screening).where(Screening.id == gone))
        assert _verify(session).ok  # without the checkpoint the shorter chain is valid
        report = _verify(session, checkpoint=cp, checkpoint_key=AUDIT_KEY)
        assert (report.ok, report.first_bad_seq) == (False, 10)
        assert "truncated" in (report.problem or "")

    def test_rewritten_chain_is_detected_by_checkpoint(self, session: Session) -> None:
        build_chain(session)
        cp = make_checkpoint(session, key=AUDIT_KEY)
        disable_audit_triggers(session)
        _update_event(session, K, actor_id="someone-else")
        _rehash_from(session, K)
        assert _verify(session).ok  # a full recompute fools the chain alone
        report = _verify(session, checkpoint=cp, checkpoint_key=AUDIT_KEY)
        assert (report.ok, report.first_bad_seq) == (False, EVENTS)

    def test_checkpoint_of_intact_chain_verifies_after_more_events(self, session: Session) -> None:
        build_chain(session, screenings=2)
        cp = make_checkpoint(session, key=AUDIT_KEY)
        factories.make_screening(session, clinic=factories.make_clinic(session, "B"))
        report = _verify(session, checkpoint=cp, checkpoint_key=AUDIT_KEY)
        assert (report.ok, report.checkpoint_seq, report.count) == (True, 6, 7)

    def test_forged_checkpoint_is_rejected(self, session: Session) -> None:
        build_chain(session, screenings=1)
        cp = make_checkpoint(session, key=AUDIT_KEY)
        forged = Checkpoint(seq=cp.seq, hash="c" * 64, time=cp.time, mac=cp.mac)
        report = _verify(session, checkpoint=forged, checkpoint_key=AUDIT_KEY)
        assert (report.ok, report.first_bad_seq) == (False, None)
        wrong_key = _verify(session, checkpoint=cp, checkpoint_key=b"x" * 32)
        assert wrong_key.ok is False

    def test_checkpoint_json_round_trip(self, session: Session) -> None:
        now = datetime(2026, 6, 15, 12, tzinfo=UTC)
        cp = make_checkpoint(session, key=AUDIT_KEY, now=now)
        parsed = Checkpoint.from_json(cp.to_json())
        assert parsed == cp
        assert parsed.is_authentic(AUDIT_KEY)
        assert (parsed.seq, parsed.time) == (0, "2026-06-15T12:00:00.000000Z")


def _ciphertext(session: Session, screening_id: str, column: str) -> bytes:
    value = session.execute(
        text(f"SELECT {column} FROM screening WHERE id = :id"),
        {"id": screening_id},
    ).scalar_one()
    return bytes(value)


def _set_ciphertext(session: Session, screening: Any, column: str, value: bytes) -> None:
    session.execute(
        text(f"UPDATE screening SET {column} = :v WHERE id = :id"),
        {"v": value, "id": _db_id(session, screening.id)},
    )


def _db_id(session: Session, value: Any) -> Any:
    # SQLite stores Uuid as 32 hex characters; PostgreSQL as uuid.
    return value.hex if session.get_bind().dialect.name == "sqlite" else value


class TestTamperScreening:
    @pytest.mark.parametrize("column", ["answers_ct", "result_ct", "subject_ct"])
    def test_flipped_ciphertext_bit_is_detected(self, session: Session, column: str) -> None:
        screenings = build_chain(session)
        target = screenings[1]
        session.expire_all()
        stored = bytearray(_ciphertext(session, _db_id(session, target.id), column))
        stored[-1] ^= 1
        _set_ciphertext(session, target, column, bytes(stored))
        report = _verify(session)
        assert (report.ok, report.first_bad_seq) == (False, K)
        assert "does not decrypt" in (report.problem or "")

    def test_ciphertext_copied_from_another_row_is_detected(self, session: Session) -> None:
        first, second, *_ = build_chain(session)
        other = _ciphertext(session, _db_id(session, first.id), "answers_ct")
        _set_ciphertext(session, second, "answers_ct", other)
        assert _verify(session).first_bad_seq == K

    def test_answers_reencrypted_by_key_holder_are_detected(self, session: Session) -> None:
        screenings = build_chain(session)
        target = screenings[1]
        aad = crypto.field_aad("screening", "result_ct", target.id)
        _, forged = KEYRING.encrypt(canonical.dumps({"decision": "not_candidate"}), aad)
        _set_ciphertext(session, target, "result_ct", forged)
        report = _verify(session)
        assert (report.ok, report.first_bad_seq) == (False, K)
        assert "does not match the digest" in (report.problem or "")

    def test_changed_decision_column_is_detected(self, session: Session) -> None:
        screenings = build_chain(session)
        session.execute(
            text("UPDATE screening SET decision = 'not_candidate' WHERE id = :id"),
            {"id": _db_id(session, screenings[2].id)},
        )
        assert _verify(session).first_bad_seq == 7

    def test_missing_key_is_reported_not_crashed(self, session: Session) -> None:
        build_chain(session)
        other = crypto.KeyRing.from_keys({"k2": factories.KEY_2})
        report = _verify(session, keyring=other)
        assert (report.ok, report.first_bad_seq) == (False, 1)

    def test_verify_without_keyring_skips_digests(self, session: Session) -> None:
        build_chain(session)
        report = _verify(session, keyring=None)
        assert (report.ok, report.screenings_checked) == (True, 0)


def test_audit_key_from_settings_decodes() -> None:
    encoded = base64.b64encode(AUDIT_KEY).decode()
    assert base64.b64decode(encoded) == AUDIT_KEY
    assert timedelta(0) == timedelta(0)


def test_head_matches_events(session: Session) -> None:
    build_chain(session, screenings=1, reads=0)
    assert head_seq(session) == 1
