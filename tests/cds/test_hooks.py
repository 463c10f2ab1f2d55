"""CDS Hooks 2.0: discovery, cards for stored and prefetched screenings, JWT auth, feedback."""

from collections.abc import Iterator
from typing import Any

import jsonschema
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.apikey import service as apikey_service
from app.audit import denials
from app.audit import service as audit_service
from app.cds import auth as cds_auth
from app.context import app_context
from app.db.models import AuditEvent, AuditOutcome, Clinic
from app.engine import Ruleset
from app.errors import NotFound, ValidationFailed
from tests.cds import spec
from tests.cds.support import ISSUER, Signer, jwks_server, trust
from tests.factories import CANDIDATE_ANSWERS, NOW, auth, make_key
from tests.fhir.support import response
from tests.review.seed import make_user

PATIENT_VIEW = "ketamine-screening-patient-view"
BOOKING = "ketamine-screening-appointment-book"
PREGNANT = CANDIDATE_ANSWERS | {"sex_at_birth": "female", "pregnant": "yes", "breastfeeding": "no"}
UNKNOWN = {key: value for key, value in CANDIDATE_ANSWERS.items() if key != "heart_failure"}
CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER


@pytest.fixture(scope="module")
def ehr() -> Iterator[Signer]:
    with jwks_server() as signer:
        yield signer


@pytest.fixture
def clinic(session: Session, ehr: Signer) -> dict[str, str]:
    """An API key's clinic with the EHR configured as its CDS client."""
    key = make_key(session)
    trust(session, key.clinic_id, ehr)
    return auth(key)


def _hook(hook: str = "patient-view", patient: str = "p-1", **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/dr-1", "patientId": patient}
    if hook == "appointment-book":
        context["appointments"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    return {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": context} | extra  # fmt: skip


def _screen(client: TestClient, headers: dict[str, str], answers: dict[str, Any]) -> str:
    body = {
        "questionnaire": "ketamine-infusion-candidacy",
        "subject": {"reference": "Patient/p-1"},
        "answers": answers,
    }
    created = client.post("/v1/screenings", json=body, headers=headers)
    assert created.status_code == 201
    return str(created.json()["id"])


def _card(result: Any) -> dict[str, Any]:
    assert result.status_code == 200, result.text
    body = result.json()
    jsonschema.validate(body, spec.RESPONSE, format_checker=CHECKER)
    (card,) = body["cards"]
    return dict(card)


def test_discovery_validates(client: TestClient) -> None:
    found = client.get("/cds-services")
    assert found.status_code == 200
    jsonschema.validate(found.json(), spec.DISCOVERY, format_checker=CHECKER)
    services = {s["id"]: s for s in found.json()["services"]}
    assert {s["hook"] for s in services.values()} == {"patient-view", "appointment-book"}
    assert "{{context.patientId}}" in services[PATIENT_VIEW]["prefetch"]["questionnaireResponse"]


@pytest.mark.parametrize(
    ("answers", "indicator"),
    [(PREGNANT, "critical"), (UNKNOWN, "warning"), (CANDIDATE_ANSWERS, "info")],
    ids=["pregnant", "unknown", "clean"],
)
def test_stored_screening_card(
    client: TestClient, clinic: dict[str, str], ehr: Signer, answers: Any, indicator: str
) -> None:
    screening_id = _screen(client, clinic, answers)
    card = _card(client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook(),
                             headers=ehr.headers(PATIENT_VIEW)))  # fmt: skip
    assert card["indicator"] == indicator
    assert card["links"] == [
        {
            "label": "Open the physician review",
            "url": f"http://testserver/review/screenings/{screening_id}",
            "type": "absolute",
        }
    ]
    if indicator == "critical":
        assert "Pregnancy" in card["detail"] or "pregnan" in card["detail"].lower()
        assert "Are you pregnant" in card["detail"] or "pregnant" in card["detail"]
        assert {r["code"] for r in card["overrideReasons"]} >= {"specialist_cleared"}
    if indicator == "info":
        assert "overrideReasons" not in card


def test_prefetched_response_is_evaluated_not_stored(
    client: TestClient, clinic: dict[str, str], ehr: Signer, ruleset: Ruleset
) -> None:
    answered = response(ruleset, PREGNANT, reference="Patient/p-1")
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": answered}]}
    prefetch = {"questionnaireResponse": bundle}
    card = _card(client.post(f"/cds-services/{BOOKING}",
                             json=_hook("appointment-book", prefetch=prefetch),
                             headers=ehr.headers(BOOKING)))  # fmt: skip
    assert card["indicator"] == "critical"
    assert "links" not in card
    listed = client.get("/v1/screenings", headers=clinic).json()
    assert listed["items"] == []


def test_a_prefetched_response_of_another_patient_is_ignored(
    client: TestClient, clinic: dict[str, str], ehr: Signer, ruleset: Ruleset
) -> None:
    prefetch = {"questionnaireResponse": response(ruleset, PREGNANT, reference="Patient/other")}
    card = _card(client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook(prefetch=prefetch),
                             headers=ehr.headers(PATIENT_VIEW)))  # fmt: skip
    assert card["indicator"] == "warning"
    assert "no screening" in card["summary"]


def test_no_screening_on_file_is_a_warning(
    client: TestClient, clinic: dict[str, str], ehr: Signer
) -> None:
    card = _card(client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook(patient="p-404"),
                             headers=ehr.headers(PATIENT_VIEW)))  # fmt: skip
    assert card["indicator"] == "warning"
    assert "no screening" in card["summary"]


def _wrong_key_token() -> str:
    other = ec.generate_private_key(ec.SECP384R1())
    stamp = int(NOW.timestamp())
    claims = {"iss": ISSUER, "aud": f"http://testserver/cds-services/{PATIENT_VIEW}",
              "iat": stamp, "exp": stamp + 300, "jti": "x"}  # fmt: skip
    return jwt.encode(claims, other, algorithm="ES384", headers={"kid": "ehr-1"})


@pytest.mark.parametrize(
    "case",
    ["none", "garbage", "expired", "wrong_key", "wrong_audience", "unknown_issuer", "hs256",
     "too_long", "no_jti"],
)  # fmt: skip
def test_bad_or_expired_jwt_is_401_and_audited(
    client: TestClient, session: Session, clinic: dict[str, str], ehr: Signer, case: str
) -> None:
    stamp = int(NOW.timestamp())
    tokens = {
        "none": None,
        "garbage": "not.a.jwt",
        "expired": ehr.token(PATIENT_VIEW, iat=stamp - 900, exp=stamp - 600),
        "wrong_key": _wrong_key_token(),
        "wrong_audience": ehr.token(PATIENT_VIEW, aud="https://elsewhere/cds-services/x"),
        "unknown_issuer": ehr.token(PATIENT_VIEW, iss="https://other-ehr.test"),
        "hs256": jwt.encode({"iss": ISSUER, "aud": "x"}, "secret-secret-secret-secret-32-bytes",
                            algorithm="HS256"),
        "too_long": ehr.token(PATIENT_VIEW, exp=stamp + 3600),
        "no_jti": ehr.token(PATIENT_VIEW, jti=None),
    }  # fmt: skip
    token = tokens[case]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    refused = client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook(), headers=headers)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    # no caller: counted into the minute's auth.denials_counted event, not one event each
    denied = select(AuditEvent).where(AuditEvent.outcome == AuditOutcome.denied)
    assert session.scalars(denied).all() == []
    denials.flush(app_context(client.app))  # type: ignore[arg-type]
    (counted,) = session.scalars(denied).all()
    assert counted.action == denials.COUNTED_ACTION
    assert counted.detail is not None
    assert [(c["status"], c["count"]) for c in counted.detail["counts"]] == [(401, 1)]


def test_a_replayed_jwt_is_401(client: TestClient, clinic: dict[str, str], ehr: Signer) -> None:
    headers = ehr.headers(PATIENT_VIEW)
    first = client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook(), headers=headers)
    assert first.status_code == 200
    again = client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook(), headers=headers)
    assert again.status_code == 401


def test_every_call_is_audited(
    client: TestClient, session: Session, clinic: dict[str, str], ehr: Signer
) -> None:
    card = _card(client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook(),
                             headers=ehr.headers(PATIENT_VIEW)))  # fmt: skip
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "cds.advised")).one()
    assert event.target_id == card["uuid"]
    assert event.detail is not None
    assert event.detail["indicator"] == "warning"
    assert str(event.actor_id).startswith("cds:")


def test_feedback_is_audited_without_the_comment(
    client: TestClient, session: Session, clinic: dict[str, str], ehr: Signer
) -> None:
    _screen(client, clinic, PREGNANT)
    card = _card(client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook(),
                             headers=ehr.headers(PATIENT_VIEW)))  # fmt: skip
    url = f"/cds-services/{PATIENT_VIEW}/feedback"
    feedback = {"feedback": [{
        "card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-06-15T14:31:00Z",
        "overrideReason": {"reason": card["overrideReasons"][2],
                           "userComment": "MRN 12345 seen by cardiology"}}]}  # fmt: skip
    recorded = client.post(url, json=feedback, headers=ehr.headers(f"{PATIENT_VIEW}/feedback"))
    assert recorded.status_code == 200, recorded.text
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "cds.feedback_recorded")
    ).one()
    assert event.detail is not None
    assert event.detail["outcome"] == "overridden"
    assert event.detail["override_reason"] == card["overrideReasons"][2]["code"]
    assert event.detail["has_comment"] is True
    assert "12345" not in str(event.detail)
    unknown = {"feedback": [{"card": "no-such-card", "outcome": "accepted",
                             "outcomeTimestamp": "2026-06-15T14:31:00Z"}]}  # fmt: skip
    assert client.post(url, json=unknown, headers=ehr.headers(PATIENT_VIEW)).status_code == 404
    assert client.post(url, json=feedback).status_code == 401


def test_wrong_hook_for_the_service_is_422(
    client: TestClient, clinic: dict[str, str], ehr: Signer
) -> None:
    wrong = client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook("appointment-book"),
                        headers=ehr.headers(PATIENT_VIEW))  # fmt: skip
    assert wrong.status_code == 422
    missing = client.post("/cds-services/nope", json=_hook(), headers=ehr.headers("nope"))
    assert missing.status_code in (401, 404)


def test_override_by_a_linked_physician_is_recorded_as_their_review(
    client: TestClient, session: Session, clinic: dict[str, str], ehr: Signer
) -> None:
    screening_id = _screen(client, clinic, PREGNANT)
    key = apikey_service.authenticate(session, key=clinic["Authorization"].split()[1])
    assert key is not None
    clinic_name = session.get_one(Clinic, key.clinic_id).name
    make_user(session, clinic=clinic_name, email="dr.cds@example.test")
    cds_auth.link_practitioner(
        session,
        issuer=ISSUER,
        ehr_user="Practitioner/dr-1",
        email="dr.cds@example.test",
        actor=audit_service.Actor.cli(),
        now=NOW,
    )
    session.flush()
    card = _card(client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook(),
                             headers=ehr.headers(PATIENT_VIEW)))  # fmt: skip
    specialist = next(r for r in card["overrideReasons"] if r["code"] == "specialist_cleared")
    feedback = {"feedback": [{
        "card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-06-15T14:31:00Z",
        "overrideReason": {"reason": specialist, "userComment": "Seen by cardio"}}]}  # fmt: skip
    url = f"/cds-services/{PATIENT_VIEW}/feedback"
    assert client.post(url, json=feedback, headers=ehr.headers(PATIENT_VIEW)).status_code == 200
    review = client.get(f"/v1/screenings/{screening_id}", headers=clinic).json()["review"]
    assert review["disposition"] == "cleared"
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "cds.feedback_recorded")
    ).one()
    assert event.detail is not None
    assert event.detail["review_id"] is not None
    recorded = session.scalars(select(AuditEvent).where(AuditEvent.action == "review.recorded"))
    assert [e.detail["override_reason"] for e in recorded if e.detail] == ["specialist_cleared"]


def test_override_by_an_unlinked_user_records_no_review(
    client: TestClient, session: Session, clinic: dict[str, str], ehr: Signer
) -> None:
    screening_id = _screen(client, clinic, PREGNANT)
    card = _card(client.post(f"/cds-services/{PATIENT_VIEW}", json=_hook(),
                             headers=ehr.headers(PATIENT_VIEW)))  # fmt: skip
    feedback = {"feedback": [{
        "card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-06-15T14:31:00Z",
        "overrideReason": {"reason": card["overrideReasons"][0]}}]}  # fmt: skip
    url = f"/cds-services/{PATIENT_VIEW}/feedback"
    assert client.post(url, json=feedback, headers=ehr.headers(PATIENT_VIEW)).status_code == 200
    assert client.get(f"/v1/screenings/{screening_id}", headers=clinic).json()["review"] is None


def test_link_practitioner_needs_a_physician_of_the_clinic(
    session: Session, clinic: dict[str, str]
) -> None:
    make_user(session, clinic="Another clinic", email="dr.other@example.test")
    with pytest.raises(ValidationFailed):
        cds_auth.link_practitioner(session, issuer=ISSUER, ehr_user="Practitioner/x",
                                   email="dr.other@example.test",
                                   actor=audit_service.Actor.cli(), now=NOW)  # fmt: skip
    with pytest.raises(NotFound):
        cds_auth.link_practitioner(session, issuer="https://nope.test", ehr_user="P/x",
                                   email="dr.other@example.test",
                                   actor=audit_service.Actor.cli(), now=NOW)  # fmt: skip
