"""Free-text fields refuse control and bidi characters (422 naming the field) and store NFC."""

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.account import tokens as account_tokens
from app.audit import service as audit_service
from app.db.models import Screening
from app.engine import Ruleset
from tests.factories import CANDIDATE_ANSWERS, FixedClock, auth, count, make_key
from tests.fhir.support import response as fhir_response
from tests.review.seed import seed_queue

QUESTIONNAIRE = "ketamine-infusion-candidacy"


def _screening(reference: str) -> dict[str, Any]:
    return {
        "questionnaire": QUESTIONNAIRE,
        "answers": CANDIDATE_ANSWERS,
        "subject": {"reference": reference},
    }


def _errors(response: Any) -> list[tuple[str, str]]:
    return [(e["code"], e.get("pointer", "")) for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("reference", "code"),
    [
        ("MRN-\u202e1234", "bidi_control"),
        ("MRN-\u2067-1", "bidi_control"),
        ("MRN\x00", "control_character"),
        ("MRN\n2", "control_character"),
        ("MRN\x9b31m", "control_character"),
    ],
)
def test_a_subject_reference_with_a_hidden_character_is_422_and_stores_nothing(
    client: TestClient, session: Session, reference: str, code: str
) -> None:
    key = make_key(session)
    before = count(session, Screening)
    rejected = client.post("/v1/screenings", json=_screening(reference), headers=auth(key))
    assert rejected.status_code == 422
    assert _errors(rejected) == [(code, "#/subject/reference")]
    assert reference not in rejected.text
    assert count(session, Screening) == before


def test_a_subject_reference_is_stored_nfc(client: TestClient, session: Session) -> None:
    key = make_key(session)
    created = client.post("/v1/screenings", json=_screening("Jose\u0301-7"), headers=auth(key))
    assert created.status_code == 201
    read = client.get(f"/v1/screenings/{created.json()['id']}", headers=auth(key)).json()
    assert read["subject"]["reference"] == "Jos\u00e9-7"


def test_an_invitation_reference_with_a_bidi_override_is_422(
    client: TestClient, session: Session
) -> None:
    rejected = client.post(
        "/v1/invitations",
        json={"subject": {"reference": "MRN\u202e-1"}},
        headers=auth(make_key(session)),
    )
    assert rejected.status_code == 422
    assert _errors(rejected) == [("bidi_control", "#/subject/reference")]


def test_a_fhir_subject_reference_with_a_bidi_override_is_422(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    before = count(session, Screening)
    resource = fhir_response(ruleset, CANDIDATE_ANSWERS, reference="Patient/\u202e42")
    rejected = client.post(
        "/fhir/QuestionnaireResponse", json=resource, headers=auth(make_key(session))
    )
    assert rejected.status_code == 422
    assert "bidi_control" in rejected.text
    assert count(session, Screening) == before


def test_a_review_note_keeps_line_breaks_and_refuses_control_characters(
    client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    token = account_tokens.create_token(
        session, email=seeded.physician, actor=audit_service.Actor.cli(), now=datetime.now(UTC)
    )
    target = seeded.queue[3]  # elevated blood pressure: a review flag only
    etag = client.get(f"/v1/screenings/{target}", headers=auth(token)).headers["etag"]
    path, headers = f"/v1/screenings/{target}/reviews", auth(token) | {"If-Match": etag}
    rejected = client.post(
        path, json={"disposition": "cleared", "note": "ok\x1b[2J"}, headers=headers
    )
    assert rejected.status_code == 422
    assert _errors(rejected) == [("control_character", "#/note")]
    signed = client.post(
        path,
        json={"disposition": "cleared", "note": "BP 132/84\r\n\tre\u0301checked"},
        headers=headers,
    )
    assert signed.status_code == 201, signed.text
    assert signed.json()["note"] == "BP 132/84\n\tr\u00e9checked"
