"""POST /fhir/QuestionnaireResponse: stored like POST /v1/screenings, FHIR in and out."""

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.parameters import Parameters
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.apikey import service as apikey_service
from app.crypto import field_aad
from app.db.models import AuditEvent, Screening, ScreeningFlag, Source
from app.engine import Ruleset
from tests.factories import (
    CANDIDATE_ANSWERS,
    KEYRING,
    NEEDS_REVIEW_ANSWERS,
    NOT_CANDIDATE_ANSWERS,
    auth,
    count,
    make_key,
)
from tests.fhir.support import response

PATH = "/fhir/QuestionnaireResponse"
PREGNANT = CANDIDATE_ANSWERS | {"sex_at_birth": "female", "pregnant": "yes"}
UNKNOWN = {key: value for key, value in CANDIDATE_ANSWERS.items() if key != "heart_failure"}
CHECKLIST = CANDIDATE_ANSWERS | {
    "heart_brain_history": ["stroke", "unsure"],
    "heart_brain_recent": ["unsure"],
    "psychosis_or_mania": "unsure",
}


def _parameter(body: dict[str, Any], name: str) -> Any:
    return next(p for p in body["parameter"] if p["name"] == name)


def _decrypted(row: Screening, column: str) -> Any:
    ciphertext: bytes = getattr(row, column)
    aad = field_aad("screening", column, row.id)
    return json.loads(KEYRING.decrypt(row.key_id, ciphertext, aad))


def _row(session: Session, screening_id: str) -> Screening:
    return session.scalars(select(Screening).where(Screening.id == uuid.UUID(screening_id))).one()


def _flags(session: Session, screening_id: str) -> list[tuple[str, str, str]]:
    rows = session.scalars(
        select(ScreeningFlag).where(ScreeningFlag.screening_id == uuid.UUID(screening_id))
    )
    return sorted((flag.rule, flag.severity.value, flag.status.value) for flag in rows)


def test_create_returns_201_location_and_parameters(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    created = client.post(PATH, json=response(ruleset, NEEDS_REVIEW_ANSWERS), headers=auth(key))
    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == "application/fhir+json"
    body = created.json()
    Parameters.model_validate(body)
    location = created.headers["location"]
    screening_id = location.rsplit("/", 1)[1]
    assert location == f"/v1/screenings/{screening_id}"
    stored = _parameter(body, "questionnaireResponse")["resource"]
    assert stored["id"] == screening_id
    assert stored["questionnaire"].endswith(f"|{ruleset.sha256}")
    result = {part["name"]: part for part in _parameter(body, "result")["part"]}
    assert result["decision"]["valueCode"] == "needs_review"
    assert result["flag"]["part"][0] == {"name": "rule", "valueCode": "elevated_blood_pressure"}
    fetched = client.get(location, headers=auth(key)).json()
    assert fetched["decision"] == "needs_review"
    assert fetched["subject"] == {"reference": "Patient/0042"}
    assert _row(session, screening_id).source is Source.fhir


def test_stored_response_round_trips_to_the_same_screening(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    first = client.post(PATH, json=response(ruleset, CHECKLIST), headers=auth(key)).json()
    stored = _parameter(first, "questionnaireResponse")["resource"]
    again = stored | {"questionnaire": stored["questionnaire"]}
    del again["id"]
    second = client.post(PATH, json=again, headers=auth(key))
    assert second.status_code == 201
    first_id = _parameter(first, "screening")["valueUri"].rsplit("/", 1)[1]
    second_id = second.headers["location"].rsplit("/", 1)[1]
    assert _decrypted(_row(session, first_id), "answers_ct") == _decrypted(
        _row(session, second_id), "answers_ct"
    )


@pytest.mark.parametrize(
    "answers",
    [CANDIDATE_ANSWERS, NEEDS_REVIEW_ANSWERS, NOT_CANDIDATE_ANSWERS, PREGNANT, UNKNOWN, CHECKLIST],
    ids=["candidate", "needs_review", "not_candidate", "pregnant", "unknown", "checklist"],
)
def test_same_answers_store_identical_results_as_v1(
    client: TestClient, session: Session, ruleset: Ruleset, answers: dict[str, Any]
) -> None:
    """Both interfaces call the same service: identical stored result, answers and flags."""
    key = make_key(session)
    via_fhir = client.post(PATH, json=response(ruleset, answers), headers=auth(key))
    v1_body = {
        "questionnaire": ruleset.questionnaire.id,
        "subject": {"reference": "Patient/0042"},
        "answers": answers,
    }
    via_v1 = client.post("/v1/screenings", json=v1_body, headers=auth(key))
    assert (via_fhir.status_code, via_v1.status_code) == (201, 201)
    fhir_id = via_fhir.headers["location"].rsplit("/", 1)[1]
    v1_id = via_v1.json()["id"]
    fhir_row, v1_row = _row(session, fhir_id), _row(session, v1_id)
    fhir_result = _decrypted(fhir_row, "result_ct")
    v1_result = _decrypted(v1_row, "result_ct")
    assert {k: v for k, v in fhir_result.items() if k != "id"} == {
        k: v for k, v in v1_result.items() if k != "id"
    }
    assert _decrypted(fhir_row, "answers_ct") == _decrypted(v1_row, "answers_ct")
    assert _decrypted(fhir_row, "subject_ct") == _decrypted(v1_row, "subject_ct")
    assert (fhir_row.decision, fhir_row.has_exclude, fhir_row.as_of_date) == (
        v1_row.decision,
        v1_row.has_exclude,
        v1_row.as_of_date,
    )
    assert _flags(session, fhir_id) == _flags(session, v1_id)
    assert (fhir_row.source, v1_row.source) == (Source.fhir, Source.api)


def test_idempotency_key_replays_the_first_response(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    headers = auth(key) | {"Idempotency-Key": "qr-0001"}
    first = client.post(PATH, json=response(ruleset, CANDIDATE_ANSWERS), headers=headers)
    second = client.post(PATH, json=response(ruleset, CANDIDATE_ANSWERS), headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert count(session, Screening) == 1
    other = client.post(PATH, json=response(ruleset, PREGNANT), headers=headers)
    assert other.status_code == 422
    assert other.json()["issue"][0]["details"]["coding"][0]["code"] == "idempotency_key_reused"


def test_created_is_audited_with_source_fhir(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    created = client.post(PATH, json=response(ruleset, CANDIDATE_ANSWERS), headers=auth(key))
    screening_id = created.headers["location"].rsplit("/", 1)[1]
    event = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "screening.created", AuditEvent.target_id == screening_id
        )
    ).one()
    assert event.detail is not None
    assert event.detail["source"] == "fhir"


def _issues(body: dict[str, Any]) -> list[tuple[str, list[str]]]:
    OperationOutcome.model_validate(body)
    return [
        (issue["details"]["coding"][0]["code"], issue.get("expression", []))
        for issue in body["issue"]
    ]


def test_disabled_item_names_the_link_id_without_the_value(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    answers = CANDIDATE_ANSWERS | {"pregnant": "yes"}  # male: pregnancy does not apply
    rejected = client.post(PATH, json=response(ruleset, answers), headers=auth(make_key(session)))
    assert rejected.status_code == 422
    assert rejected.headers["content-type"] == "application/fhir+json"
    assert _issues(rejected.json()) == [
        (
            "item_disabled",
            ["QuestionnaireResponse.item.where(linkId='pregnancy').item.where(linkId='pregnant')"],
        )
    ]
    assert count(session, Screening) == 0


@pytest.mark.parametrize(
    ("item", "value", "code"),
    [
        ("systolic_bp", 999, "out_of_range"),
        ("date_of_birth", "2099-01-01", "future_date"),
        ("sex_at_birth", "secret-value-xyz", "bad_choice"),
        ("heart_brain_history", ["none", "stroke"], "none_not_alone"),
        ("symptom_duration_months", "forty", "wrong_type"),
    ],
)
def test_invalid_answers_are_operation_outcomes(
    client: TestClient, session: Session, ruleset: Ruleset, item: str, value: Any, code: str
) -> None:
    resource = response(ruleset, CANDIDATE_ANSWERS | {item: value}, grouped=False)
    rejected = client.post(PATH, json=resource, headers=auth(make_key(session)))
    assert rejected.status_code == 422
    assert _issues(rejected.json()) == [
        (code, [f"QuestionnaireResponse.item.where(linkId='{item}')"])
    ]
    assert "secret-value-xyz" not in rejected.text
    assert "2099" not in rejected.text


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"resourceType": "Patient"}, "not_a_questionnaire_response"),
        ({"status": "in-progress"}, "not_completed"),
        ({"subject": {}}, "missing_subject"),
        ({"questionnaire": "http://x/fhir/Questionnaire/other"}, "unknown_questionnaire"),
        ({"questionnaire": "http://x/fhir/Questionnaire/ketamine-infusion-candidacy|0.1"},
         "unknown_questionnaire_version"),
    ],
)  # fmt: skip
def test_bad_envelopes_are_rejected(
    client: TestClient, session: Session, ruleset: Ruleset, change: dict[str, Any], code: str
) -> None:
    resource = response(ruleset, CANDIDATE_ANSWERS) | change
    rejected = client.post(PATH, json=resource, headers=auth(make_key(session)))
    assert rejected.status_code == 422
    assert [issue[0] for issue in _issues(rejected.json())] == [code]


def test_unknown_link_id_and_two_answers_to_one_choice(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    resource = response(ruleset, CANDIDATE_ANSWERS | {"favourite_colour": "blue"})
    resource["item"][0]["item"][1]["answer"].append(resource["item"][0]["item"][1]["answer"][0])
    rejected = client.post(PATH, json=resource, headers=auth(make_key(session)))
    assert rejected.status_code == 422
    codes = sorted(issue[0] for issue in _issues(rejected.json()))
    assert codes == ["wrong_type"]  # envelope problems come first; nothing was evaluated


def test_not_json_and_auth_errors(client: TestClient, session: Session, ruleset: Ruleset) -> None:
    reader = make_key(session, scopes=(apikey_service.SCREENINGS_READ,))
    body = response(ruleset, CANDIDATE_ANSWERS)
    assert client.post(PATH, json=body).status_code == 401
    forbidden = client.post(PATH, json=body, headers=auth(reader))
    assert forbidden.status_code == 403
    assert _issues(forbidden.json())[0][0] == "forbidden"
    garbled = client.post(
        PATH, content=b"{not json", headers=auth(make_key(session)) | {"content-type": FHIR}
    )
    assert garbled.status_code == 422
    assert _issues(garbled.json())[0][0] == "malformed_json"


FHIR = "application/fhir+json"


def test_unknown_link_id_is_an_unknown_item(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    resource = response(ruleset, CANDIDATE_ANSWERS | {"favourite_colour": "blue"})
    rejected = client.post(PATH, json=resource, headers=auth(make_key(session)))
    assert rejected.status_code == 422
    assert _issues(rejected.json()) == [
        ("unknown_item", ["QuestionnaireResponse.item.where(linkId='favourite_colour')"])
    ]
