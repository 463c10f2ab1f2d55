"""Typed plain functions that build rows through the services: add and flush, never commit."""

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.crypto import KeyRing
from app.db.base import Base
from app.engine import Ruleset
from app.rulepack import service as rulepack_service
from app.screening import service as screening_service

DATA_KEY = "test1:" + base64.b64encode(bytes(range(32))).decode()
AUDIT_KEY = base64.b64encode(bytes(range(32, 64))).decode()
NOW = datetime(2026, 6, 15, 14, 30, tzinfo=UTC)
KEYRING = KeyRing.parse(DATA_KEY)


@dataclass
class FixedClock:
    """A clock tests move by hand; "today" (the as-of date) is the UTC date of ``at``."""

    at: datetime = NOW

    def now(self) -> datetime:
        return self.at

    def today(self) -> date:
        return self.at.date()


# A complete, clean answer set under the default pack (policy v2): every rule clear, so the
# decision is `candidate`. V1_CANDIDATE_ANSWERS is its policy-v1 part (rules/ketamine-infusion-v1).
V1_CANDIDATE_ANSWERS: dict[str, Any] = {
    "date_of_birth": "1984-03-27",
    "sex_at_birth": "male",
    "conditions": ["migraine"],
    "symptom_duration_months": 48,
    "prior_treatments_tried": "yes",
    "hypertension": "no",
    "systolic_bp": 120,
    "diastolic_bp": 80,
    "concussion": "no",
    "brain_injury": "no",
    "intracranial_pressure": "no",
    "heart_failure": "no",
    "schizophrenia": "no",
    "ketamine_before": "no",
}
CANDIDATE_ANSWERS: dict[str, Any] = V1_CANDIDATE_ANSWERS | {
    "heart_brain_history": ["none"],
    "other_medical_conditions": ["none"],
    "psychosis_or_mania": "no",
    "substance_use": "no",
}
NEEDS_REVIEW_ANSWERS = CANDIDATE_ANSWERS | {"systolic_bp": 148}
NOT_CANDIDATE_ANSWERS = CANDIDATE_ANSWERS | {"heart_failure": "yes"}


def make_key(
    session: Session,
    *,
    clinic_name: str | None = None,
    scopes: tuple[str, ...] = apikey_service.DEFAULT_SCOPES,
) -> apikey_service.CreatedKey:
    """Create a clinic (unless it exists) and an API key for it."""
    return apikey_service.create(
        session,
        clinic_name=clinic_name or f"Clinic {uuid.uuid4().hex[:8]}",
        scopes=scopes,
        actor=audit_service.Actor.cli(),
        now=NOW,
    )


def auth(key: apikey_service.CreatedKey | str) -> dict[str, str]:
    """The Authorization header of a key."""
    plaintext = key if isinstance(key, str) else key.key
    return {"Authorization": f"Bearer {plaintext}"}


def make_screening(
    session: Session,
    *,
    ruleset: Ruleset,
    clinic_id: uuid.UUID,
    answers: dict[str, Any] | None = None,
    reference: str = "MRN-1",
    created_at: datetime = NOW,
) -> dict[str, Any]:
    """Store a screening through the service; return its body as the API shows it."""
    rulepack_service.store_rule_pack(session, ruleset=ruleset, now=created_at)
    session.flush()
    created = screening_service.submit(
        session.connection(),
        ruleset=ruleset,
        keyring=KEYRING,
        clinic_id=clinic_id,
        actor=audit_service.Actor.cli(),
        submission=screening_service.Submission(
            "ketamine-infusion-candidacy",
            CANDIDATE_ANSWERS if answers is None else answers,
            {"reference": reference},
        ),
        idempotency_key=None,
        now=created_at,
        as_of=created_at.date(),
    )
    session.flush()
    return created.body


def count(session: Session, model: type[Base]) -> int:
    """The number of rows of a table."""
    return session.scalar(select(func.count()).select_from(model)) or 0
