"""Helpers for form and invitation tests: a clinic with its form settings, invitations, answers."""

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.db.models import Clinic, Screening
from app.invitation import service as invitation_service
from app.screening import store
from tests.factories import KEYRING, NOW, make_key

ROOT = Path(__file__).resolve().parents[2]
PHONE = "(555) 010-2030"

V1_RULES = ROOT / "rules" / "ketamine-infusion-v1"

# The answers that must be stored for the female path under the v1 pack, and under the default
# pack (policy v2): "None of these" on every checklist and "No" to the new questions.
V1_FEMALE_ANSWERS: dict[str, Any] = {
    "date_of_birth": "1985-03-27",
    "sex_at_birth": "female",
    "conditions": ["migraine", "depression"],
    "symptom_duration_months": 24,
    "prior_treatments_tried": "yes",
    "pregnant": "no",
    "breastfeeding": "no",
    "hypertension": "yes",
    "bp_controlled": "yes",
    "systolic_bp": 135,
    "diastolic_bp": 85,
    "concussion": "no",
    "brain_injury": "no",
    "intracranial_pressure": "unsure",
    "heart_failure": "no",
    "schizophrenia": "no",
    "ketamine_before": "no",
}
FEMALE_ANSWERS: dict[str, Any] = V1_FEMALE_ANSWERS | {
    "heart_brain_history": ["none"],
    "other_medical_conditions": ["none"],
    "psychosis_or_mania": "no",
    "substance_use": "no",
}
MALE_ANSWERS = {
    key: value for key, value in FEMALE_ANSWERS.items() if key not in {"pregnant", "breastfeeding"}
} | {"sex_at_birth": "male"}

# Form fields per page, for the answers above (dates and numbers typed as a patient might).
_COMMON_PAGES: list[tuple[str, dict[str, Any]]] = [
    ("about_you", {"date_of_birth-month": "March", "date_of_birth-day": "27",
                   "date_of_birth-year": "1985", "sex_at_birth": "female"}),
    ("your_condition", {"conditions": ["migraine", "depression"], "symptom_duration_months": "24",
                        "prior_treatments_tried": "yes"}),
    ("pregnancy", {"pregnant": "no", "breastfeeding": "no"}),
    ("blood_pressure", {"hypertension": "yes"}),
    ("blood_pressure-2", {"bp_controlled": "yes", "systolic_bp": "135/85"}),
    ("head_and_brain", {"concussion": "no"}),
    ("head_and_brain-2", {"brain_injury": "no", "intracranial_pressure": "unsure"}),
]  # fmt: skip
FEMALE_PAGES: list[tuple[str, dict[str, Any]]] = [
    *_COMMON_PAGES,
    ("heart", {"heart_failure": "no", "heart_brain_history": ["none"]}),
    ("other_health", {"other_medical_conditions": ["none"]}),
    ("mental_health", {"schizophrenia": "no", "psychosis_or_mania": "no", "substance_use": "no"}),
    ("ketamine", {"ketamine_before": "no"}),
]
V1_FEMALE_PAGES: list[tuple[str, dict[str, Any]]] = [
    *_COMMON_PAGES,
    ("heart_and_mind", {"heart_failure": "no", "schizophrenia": "no"}),
    ("ketamine", {"ketamine_before": "no"}),
]


def as_male(steps: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The same walk as a male patient: no pregnancy page."""
    return [
        (page, data | ({"sex_at_birth": "male"} if page == "about_you" else {}))
        for page, data in steps
        if page != "pregnancy"
    ]


MALE_PAGES = as_male(FEMALE_PAGES)
V1_MALE_PAGES = as_male(V1_FEMALE_PAGES)


def make_form_clinic(
    session: Session, *, origins: list[str] | None = None, phone: str | None = PHONE
) -> tuple[uuid.UUID, str]:
    """A clinic with an API key, a phone number and framing origins; returns (id, key)."""
    created = make_key(session)
    clinic = session.get_one(Clinic, created.clinic_id)
    invitation_service.configure_clinic(
        session, clinic_name=clinic.name, phone=phone, form_origins=origins or [],
        actor=audit_service.Actor.cli(),
    )  # fmt: skip
    return created.clinic_id, created.key


def make_invitation(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    reference: str = "MRN-7",
    language: str = "en",
    now: datetime = NOW,
    lifetime: timedelta = timedelta(days=7),
) -> str:
    """An invitation; returns its form path (which holds the token)."""
    created = invitation_service.create(
        session, keyring=KEYRING, clinic_id=clinic_id, subject={"reference": reference},
        language=language, expires_at=now + lifetime, now=now, actor=audit_service.Actor.cli(),
    )  # fmt: skip
    return created.path


def stored_screenings(session: Session, clinic_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every stored screening of a clinic, decrypted, oldest first, with its source."""
    rows = session.scalars(
        select(Screening).where(Screening.clinic_id == clinic_id).order_by(Screening.created_at)
    )
    return [
        store.ScreeningContent.decrypt(KEYRING, row).to_dict() | {"source": row.source.value}
        for row in rows
    ]
