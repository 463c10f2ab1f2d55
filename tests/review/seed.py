"""A clinic with physicians and a queue of screenings in a known order (plain functions)."""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy.orm import Session

from app.account import service as account_service
from app.audit import service as audit_service
from app.db.models import Role
from app.engine import Ruleset
from tests.factories import CANDIDATE_ANSWERS, NEEDS_REVIEW_ANSWERS, make_screening

PASSWORD = "correct horse battery staple"
PREGNANT_ANSWERS = CANDIDATE_ANSWERS | {
    "sex_at_birth": "female",
    "pregnant": "yes",
    "breastfeeding": "no",
}
HEART_FAILURE_ANSWERS = CANDIDATE_ANSWERS | {"heart_failure": "yes"}
UNSURE_CONCUSSION_ANSWERS = CANDIDATE_ANSWERS | {"concussion": "unsure"}
# Policy v2 checklists and choices, review flags only (so it queues after the others):
# a heart attack ticked beside "not sure" fires one rule and leaves three open; two other
# conditions fire one rule each; a recent alcohol or drug problem fires; psychosis unsure.
V2_CHECKLIST_ANSWERS = CANDIDATE_ANSWERS | {
    "heart_brain_history": ["heart_attack", "unsure"],
    "heart_brain_recent": ["none"],
    "other_medical_conditions": ["seizures", "glaucoma"],
    "psychosis_or_mania": "unsure",
    "substance_use": "yes_within_12_months",
}


@dataclass(frozen=True)
class Seeded:
    clinic_id: uuid.UUID
    physician: str
    colleague: str
    admin: str
    # The queue's documented order: exclusions first, then oldest first. The last one is the
    # policy v2 screening of V2_CHECKLIST_ANSWERS.
    queue: tuple[str, ...]
    candidate: str


def make_user(
    session: Session,
    *,
    clinic: str,
    email: str,
    role: Role = Role.physician,
    name: str | None = None,
) -> account_service.CreatedUser:
    return account_service.create_user(
        session,
        clinic_name=clinic,
        email=email,
        role=role,
        display_name=name,
        password=PASSWORD,
        create_clinic=True,
        actor=audit_service.Actor.cli(),
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )


def seed_queue(
    session: Session, *, ruleset: Ruleset, now: datetime, clinic: str = "Seed clinic"
) -> Seeded:
    tag = uuid.uuid4().hex[:6]
    physician = make_user(
        session, clinic=clinic, email=f"rivera-{tag}@example.org", name="Dr Rivera"
    )
    make_user(session, clinic=clinic, email=f"okafor-{tag}@example.org", name="Dr Okafor")
    make_user(session, clinic=clinic, email=f"admin-{tag}@example.org", role=Role.admin)
    clinic_id = physician.clinic_id

    def add(answers: dict[str, object], reference: str, age: timedelta) -> str:
        body = make_screening(session, ruleset=ruleset, clinic_id=clinic_id, answers=answers,
                              reference=reference, created_at=now - age)  # fmt: skip
        return str(body["id"])

    elevated = add(NEEDS_REVIEW_ANSWERS, "MRN-ELEVATED-BP", timedelta(hours=5))
    heart = add(HEART_FAILURE_ANSWERS, "MRN-HEART-FAILURE", timedelta(hours=2))
    pregnant = add(PREGNANT_ANSWERS, "MRN-PREGNANT", timedelta(minutes=30))
    unsure = add(UNSURE_CONCUSSION_ANSWERS, "MRN-UNSURE-CONCUSSION", timedelta(hours=8))
    candidate = add(CANDIDATE_ANSWERS, "MRN-CANDIDATE", timedelta(hours=1))
    checklist = add(V2_CHECKLIST_ANSWERS, "MRN-V2-CHECKLIST", timedelta(minutes=10))
    return Seeded(
        clinic_id,
        f"rivera-{tag}@example.org",
        f"okafor-{tag}@example.org",
        f"admin-{tag}@example.org",
        (heart, pregnant, unsure, elevated, checklist),
        candidate,
    )


def https_client(app: FastAPI, base_url: str = "https://testserver") -> TestClient:
    """A client that keeps Secure cookies (the session cookie is Secure off loopback)."""
    return TestClient(app, base_url=base_url, follow_redirects=False)


def sign_in(client: TestClient, email: str, password: str = PASSWORD, code: str = "") -> Response:
    return client.post(
        "/sign-in", data={"email": email, "password": password, "code": code, "next": "/review"}
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def etag_of(html: str) -> str:
    found = re.search(r'name="etag" value="([^"]+)"', html)
    assert found is not None, "no ETag on the page"
    return unescape(found.group(1))
