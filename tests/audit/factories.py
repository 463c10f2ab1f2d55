"""Plain functions that build audited screenings and tamper with them like a DB owner would."""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app import crypto
from app.account import service as account_service
from app.audit import canonical
from app.audit import service as audit_service
from app.db.models import ActorType, Clinic, Decision, RulePack, Screening, Source, UserAccount
from app.engine import Ruleset
from app.review import service as review_service
from app.screening import store
from tests import factories as service_factories
from tests.review.seed import make_user

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(100, 132))
KEYRING = crypto.KeyRing.from_keys({"k1": KEY_1})
# A stored pack is its canonical content under its sha256 (audit verify re-hashes it).
RULE_PACK_CONTENT = '{"id":"audit-test-pack"}'
RULE_PACK_SHA = hashlib.sha256(RULE_PACK_CONTENT.encode()).hexdigest()
ENCRYPTED = ("subject_ct", "answers_ct", "result_ct")


def make_clinic(session: Session, name: str = "Clinic A") -> Clinic:
    clinic = Clinic(name=name, form_origins=[], created_at=datetime.now(UTC))
    session.add(clinic)
    session.flush()
    return clinic


def make_rule_pack(session: Session, sha256: str = RULE_PACK_SHA) -> RulePack:
    pack = RulePack(
        sha256=sha256,
        pack_id="ketamine-infusion",
        version="1",
        content=RULE_PACK_CONTENT,
        loaded_at=datetime.now(UTC),
    )
    session.add(pack)
    session.flush()
    return pack


def _encrypt(keyring: crypto.KeyRing, screening_id: uuid.UUID, column: str, value: Any) -> bytes:
    kid, ct = keyring.encrypt(
        canonical.dumps(value), crypto.field_aad("screening", column, screening_id)
    )
    assert kid == keyring.current_kid
    return ct


def make_screening(
    session: Session,
    *,
    clinic: Clinic,
    keyring: crypto.KeyRing = KEYRING,
    answers: dict[str, Any] | None = None,
    subject: dict[str, Any] | None = None,
) -> Screening:
    """Store an encrypted screening and its `screening.created` event, as the service does."""
    screening_id = uuid.uuid4()
    values = {
        "subject_ct": subject or {"reference": f"MRN-{screening_id.hex[:8]}"},
        "answers_ct": answers or {"pregnant": "no", "systolic_bp": 120},
        "result_ct": {"decision": "candidate", "flags": []},
    }
    screening = Screening(
        id=screening_id,
        clinic_id=clinic.id,
        created_at=datetime.now(UTC),
        as_of_date=date(2026, 6, 15),
        decision=Decision.candidate,
        has_exclude=False,
        rule_pack_sha256=RULE_PACK_SHA,
        source=Source.api,
        key_id=keyring.current_kid,
        **{column: _encrypt(keyring, screening_id, column, v) for column, v in values.items()},
    )
    session.add(screening)
    session.flush()
    audit_service.append(
        session,
        action="screening.created",
        actor=audit_service.Actor(ActorType.api_key, str(uuid.uuid4())),
        clinic_id=clinic.id,
        target_type="screening",
        target_id=screening.id,
        target_sha256=content_digest(screening, values),
        request_id=f"req-{screening_id.hex[:8]}",
        ruleset_sha256=RULE_PACK_SHA,
        detail={"decision": "candidate", "flags": []},
    )
    return screening


def content_digest(screening: Screening, values: dict[str, Any]) -> str:
    return canonical.screening_content_digest(
        clinic_id=screening.clinic_id,
        as_of=screening.as_of_date,
        decision=screening.decision,
        rule_pack_sha256=screening.rule_pack_sha256,
        subject=values["subject_ct"],
        answers=values["answers_ct"],
        result=values["result_ct"],
    )


def build_chain(session: Session, *, screenings: int = 4, reads: int = 2) -> list[Screening]:
    """A chain of `screenings` created events, each followed by `reads` read events."""
    clinic = make_clinic(session)
    make_rule_pack(session)
    made = []
    for _ in range(screenings):
        screening = make_screening(session, clinic=clinic)
        made.append(screening)
        for _ in range(reads):
            audit_service.append(
                session,
                action="screening.read",
                actor=audit_service.Actor(ActorType.user, "physician-1"),
                clinic_id=clinic.id,
                target_type="screening",
                target_id=screening.id,
                target_sha256=_created_digest(session, screening.id),
                request_id="req-read",
            )
    session.flush()
    return made


def _created_digest(session: Session, screening_id: uuid.UUID) -> str:
    value = session.execute(
        text(
            "SELECT target_sha256 FROM audit_event WHERE target_id = :id "
            "AND action = 'screening.created'"
        ),
        {"id": str(screening_id)},
    ).scalar_one()
    assert isinstance(value, str)
    return value


def disable_audit_triggers(session: Session) -> None:
    """What an attacker with owner rights does first; rolled back with the test transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
    else:
        session.execute(text("DROP TRIGGER IF EXISTS audit_event_no_update"))
        session.execute(text("DROP TRIGGER IF EXISTS audit_event_no_delete"))


def head_seq(session: Session) -> int:
    value = session.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar_one()
    assert isinstance(value, int)
    return value


def disable_rule_pack_triggers(session: Session) -> None:
    """Bypass the rule_pack append-only triggers as a database owner would (rolled back)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE rule_pack DISABLE TRIGGER USER"))
    else:
        session.execute(text("DROP TRIGGER IF EXISTS rule_pack_no_update"))
        session.execute(text("DROP TRIGGER IF EXISTS rule_pack_no_delete"))


def tamper_rule_pack(session: Session, sha256: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in a stored pack's content, bypassing the triggers."""
    disable_rule_pack_triggers(session)
    content = session.execute(
        text("SELECT content FROM rule_pack WHERE sha256 = :sha"), {"sha": sha256}
    ).scalar_one()
    assert old in content, f"{old!r} is not in the stored pack"
    session.execute(
        text("UPDATE rule_pack SET content = :content WHERE sha256 = :sha"),
        {"content": content.replace(old, new, 1), "sha": sha256},
    )


# heart_failure (exclude, fired) and elevated_blood_pressure (review, fired).
ANSWERS = service_factories.NOT_CANDIDATE_ANSWERS | {"systolic_bp": 148}
NOTE = "Heart failure confirmed by cardiology; not suitable."


@dataclass(frozen=True)
class World:
    screening_id: uuid.UUID
    review_id: uuid.UUID
    colleague_id: uuid.UUID
    other_clinic_id: uuid.UUID
    pack_sha256: str


def build_reviewed_screening(session: Session, ruleset: Ruleset) -> World:
    """A physician's review of a real screening (an exclude and a review flag fired)."""
    tag = uuid.uuid4().hex[:6]
    user = make_user(session, clinic=f"Tamper {tag}", email=f"dr-{tag}@example.org")
    colleague = make_user(session, clinic=f"Tamper {tag}", email=f"dr2-{tag}@example.org")
    other = make_user(session, clinic=f"Other {tag}", email=f"dr3-{tag}@example.org")
    body = service_factories.make_screening(
        session, ruleset=ruleset, clinic_id=user.clinic_id, answers=ANSWERS
    )
    assert {(f["rule"], f["status"]) for f in body["flags"]} == {
        ("heart_failure", "fired"),
        ("elevated_blood_pressure", "fired"),
    }
    screening_id = uuid.UUID(body["id"])
    physician = account_service.principal_of(session.get_one(UserAccount, user.user_id))
    recorded = review_service.record(
        session,
        keyring=service_factories.KEYRING,
        reviewer=physician,
        screening_id=screening_id,
        review=review_service.ReviewInput(review_service.Disposition.declined, note=NOTE),
        if_match=store.current_etag(session, clinic_id=user.clinic_id, screening_id=screening_id),
        now=service_factories.NOW,
    )
    make_rule_pack(session)  # a second stored pack, for the "moved to another pack" case
    session.flush()
    return World(
        screening_id, recorded.review.id, colleague.user_id, other.clinic_id, ruleset.sha256
    )
