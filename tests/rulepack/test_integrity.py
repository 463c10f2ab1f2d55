"""The one loader of stored rule packs refuses a pack altered in the database, and audits it.

Each reader (``GET /v1/rulesets/{sha256}``, explain, the review pages, the patient form) is
called after a database owner rewrote the stored pack (triggers bypassed): each answers its
handled error, never the altered text, and a ``rule_pack.integrity_failed`` event is written.
"""

from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.verify import verify_chain
from app.db.models import AuditEvent
from app.engine import Ruleset
from app.errors import PROBLEM_TYPE_PREFIX
from app.rulepack import policy as rulepack_policy
from tests.audit.factories import tamper_rule_pack
from tests.cds.support import jwks_server, trust
from tests.factories import CANDIDATE_ANSWERS, NOW, FixedClock, auth, make_key
from tests.fhir import support as fhir_support
from tests.form.support import make_form_clinic
from tests.review.seed import https_client, seed_queue, sign_in

MARKER = "TAMPERED-TITLE"
QUESTIONNAIRE = "ketamine-infusion-candidacy"


def _tamper(session: Session, sha256: str) -> None:
    tamper_rule_pack(session, sha256, '"Heart failure"', f'"{MARKER}"')


def _failures(session: Session, sha256: str) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "rule_pack.integrity_failed", AuditEvent.target_id == sha256
            )
        )
    )


def _assert_audited(session: Session, sha256: str, route: str) -> None:
    events = _failures(session, sha256)
    assert len(events) == 1
    event = events[0]
    assert (event.outcome, event.target_type, event.ruleset_sha256) == (
        "failed",
        "rule_pack",
        sha256,
    )
    assert event.detail is not None
    assert event.detail["route"] == route
    assert len(event.detail["stored_sha256"]) == 64
    assert event.detail["stored_sha256"] != sha256
    assert MARKER not in str(event.detail)
    report = verify_chain(session, screenings=None)  # and audit verify names the altered pack
    assert (report.ok, report.count) == (False, report.head_seq), report.problem
    assert (
        report.problem
        == f"rule pack {sha256}: stored content does not hash to its sha256 (altered)"
    )


def _assert_problem(response: Any) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM_TYPE_PREFIX + "rule-pack-integrity"
    assert "altered" in problem["detail"]
    assert MARKER not in response.text


def _submit(client: TestClient, key: Any) -> dict[str, Any]:
    body = {"questionnaire": QUESTIONNAIRE, "subject": {"reference": "MRN-7"},
            "answers": CANDIDATE_ANSWERS}  # fmt: skip
    response = client.post("/v1/screenings", json=body, headers=auth(key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_untouched_pack_is_served(client: TestClient, session: Session, ruleset: Ruleset) -> None:
    key = make_key(session)
    response = client.get(f"/v1/rulesets/{ruleset.sha256}", headers=auth(key))
    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == ruleset.sha256
    assert _failures(session, ruleset.sha256) == []


def test_ruleset_api_refuses_an_altered_pack(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    assert client.get(f"/v1/rulesets/{ruleset.sha256}", headers=auth(key)).status_code == 200
    _tamper(session, ruleset.sha256)  # after the pack was loaded and cached: still refused
    response = client.get(f"/v1/rulesets/{ruleset.sha256.upper()}", headers=auth(key))
    _assert_problem(response)
    _assert_audited(session, ruleset.sha256, "/v1/rulesets/{sha256}")


def test_explain_refuses_an_altered_pack(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    created = _submit(client, key)
    explained = client.get(f"/v1/screenings/{created['id']}/explain", headers=auth(key))
    assert explained.status_code == 200, explained.text
    _tamper(session, ruleset.sha256)
    response = client.get(f"/v1/screenings/{created['id']}/explain", headers=auth(key))
    _assert_problem(response)
    _assert_audited(session, ruleset.sha256, "/v1/screenings/{screening_id}/explain")


def _assert_error_page(response: Any) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert MARKER not in response.text
    assert "Traceback" not in response.text
    assert "rule-pack-integrity" not in response.text  # a page for people, not a problem type


def test_review_pages_refuse_an_altered_pack(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    with https_client(app) as client:
        sign_in(client, seeded.physician)
        detail = f"/review/screenings/{seeded.queue[0]}"
        assert client.get(detail).status_code == 200
        _tamper(session, ruleset.sha256)
        detail_page = client.get(detail)
        queue_page = client.get("/review")
    for page in (detail_page, queue_page):
        _assert_error_page(page)
        assert "Something went wrong on our side" in page.text
    events = _failures(session, ruleset.sha256)
    assert [event.detail and event.detail["route"] for event in events] == [
        "/review/screenings/{screening_id}",
        "/review",
    ]


def test_form_refuses_an_altered_pack(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    _, key = make_form_clinic(session)
    body = {"subject": {"reference": "MRN-7"}}
    created = client.post("/v1/invitations", json=body, headers=auth(key))
    assert created.status_code == 201, created.text  # pinned to the clinic's pack, as in use
    link = urlsplit(created.json()["url"]).path
    assert client.get(link).status_code == 200
    _tamper(session, ruleset.sha256)
    response = client.get(link)
    _assert_error_page(response)
    assert "These questions are not available right now" in response.text
    assert response.headers["cache-control"] == "no-store"
    _assert_audited(session, ruleset.sha256, "/form/{clinic_id}/{token}")


def test_pinned_active_pack_is_checked_before_evaluating(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    rulepack_policy.adopt(session, clinic_id=key.clinic_id, default=ruleset, now=NOW)  # as a start
    _tamper(session, ruleset.sha256)
    body = {"questionnaire": QUESTIONNAIRE, "answers": CANDIDATE_ANSWERS}
    response = client.post("/v1/evaluate", json=body, headers=auth(key))
    _assert_problem(response)  # documented: the response check validates it
    _assert_audited(session, ruleset.sha256, "/v1/evaluate")


def test_fhir_refuses_an_altered_pack_with_an_audited_outcome(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    rulepack_policy.adopt(session, clinic_id=key.clinic_id, default=ruleset, now=NOW)
    _tamper(session, ruleset.sha256)
    resource = fhir_support.response(ruleset, CANDIDATE_ANSWERS)
    created = client.post("/fhir/QuestionnaireResponse", json=resource, headers=auth(key))
    assert created.status_code == 500, created.text
    assert created.headers["content-type"] == "application/fhir+json"
    assert created.json()["resourceType"] == "OperationOutcome"
    assert "altered" in created.text
    assert MARKER not in created.text
    _assert_audited(session, ruleset.sha256, "/fhir/QuestionnaireResponse")


def test_cds_refuses_an_altered_pack(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    rulepack_policy.adopt(session, clinic_id=key.clinic_id, default=ruleset, now=NOW)
    service = "ketamine-screening-patient-view"
    hook = {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/dr-1", "patientId": "p-1"}}  # fmt: skip
    with jwks_server() as ehr:
        trust(session, key.clinic_id, ehr)
        _tamper(session, ruleset.sha256)
        advised = client.post(f"/cds-services/{service}", json=hook, headers=ehr.headers(service))
    _assert_problem(advised)  # documented: the response check validates it
    _assert_audited(session, ruleset.sha256, "/cds-services/{service_id}")
