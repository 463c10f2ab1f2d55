"""The hot routes read their own bodies (app/jsonbody.py) and answer as every other route.

``POST /v1/evaluate`` and ``POST /v1/screenings`` take the Request and parse with the model's
``model_validate_json``; malformed JSON and unparsable bodies are answered before the key is
checked, schema errors after it, exactly as FastAPI orders them for its own routes.
"""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.models import AuditEvent, AuditOutcome
from tests.factories import CANDIDATE_ANSWERS, make_key

QUESTIONNAIRE = "ketamine-infusion-candidacy"
EVALUATE = {"questionnaire": QUESTIONNAIRE, "answers": CANDIDATE_ANSWERS}
SCREENING = EVALUATE | {"subject": {"reference": "MRN-7"}}
JSON = {"Content-Type": "application/json"}
DEEP = b'{"questionnaire":"x","answers":{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}}"


def _post(client: TestClient, path: str, content: bytes, headers: dict[str, str]) -> Any:
    return client.post(path, content=content, headers=headers)


def _codes(response: Any) -> list[tuple[str, str]]:
    return [(e["code"], e.get("pointer", "")) for e in response.json().get("errors", [])]


@pytest.mark.parametrize("path", ["/v1/evaluate", "/v1/screenings"])
@pytest.mark.parametrize(
    ("case", "content", "headers", "with_key", "status", "codes"),
    [
        ("malformed JSON", b'{"questionnaire": ', JSON, True, 422, [("json_invalid", "#/18")]),
        ("malformed JSON, no key", b"{", JSON, False, 422, [("json_invalid", "#/1")]),
        ("nested too deep", DEEP, JSON, True, 400, []),
        ("nested too deep, no key", DEEP, JSON, False, 400, []),
        ("invalid UTF-8", b'{"questionnaire": "\xff"}', JSON, True, 400, []),
        ("empty body", b"", JSON, True, 422, [("missing", "#/")]),
        ("not an object", b"[1, 2]", JSON, True, 422, [("model_attributes_type", "#/")]),
        ("null", b"null", JSON, True, 422, [("model_attributes_type", "#/")]),
        ("text/plain", json.dumps(EVALUATE).encode(), {"Content-Type": "text/plain"}, True, 422,
         [("model_attributes_type", "#/")]),
        ("no content type", json.dumps(EVALUATE).encode(), {}, True, 422,
         [("model_attributes_type", "#/")]),
        ("schema error, no key", b"[1]", JSON, False, 401, []),
    ],
)  # fmt: skip
def test_bodies_get_fastapis_answers(
    client: TestClient,
    session: Session,
    path: str,
    case: str,
    content: bytes,
    headers: dict[str, str],
    with_key: bool,
    status: int,
    codes: list[tuple[str, str]],
) -> None:
    key = make_key(session)
    sent = headers | ({"Authorization": f"Bearer {key.key}"} if with_key else {})
    response = _post(client, path, content, sent)
    assert response.status_code == status, case
    assert response.headers["content-type"] == "application/problem+json"
    assert _codes(response) == codes, case


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "APPLICATION/JSON", "application/x+json"]
)
def test_json_media_types_are_parsed(
    client: TestClient, session: Session, content_type: str
) -> None:
    key = make_key(session)
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {key.key}"}
    response = _post(client, "/v1/screenings", json.dumps(SCREENING).encode(), headers)
    assert response.status_code == 201
    assert response.json()["decision"] == "candidate"


def test_a_rejected_body_is_audited_as_a_denied_screening(
    client: TestClient, session: Session
) -> None:
    key = make_key(session)
    invalid = SCREENING | {"answers": CANDIDATE_ANSWERS | {"systolic_bp": "high"}}
    headers = JSON | {"Authorization": f"Bearer {key.key}"}
    response = _post(client, "/v1/screenings", json.dumps(invalid).encode(), headers)
    assert response.status_code == 422
    event = session.query(AuditEvent).order_by(AuditEvent.seq.desc()).first()
    assert event is not None
    assert (event.action, event.outcome, event.actor_id) == (
        "screening.created",
        AuditOutcome.invalid,
        str(key.api_key_id),
    )
    assert event.request_id == response.headers["x-request-id"]


def test_the_access_log_names_the_route_and_clinic(
    client: TestClient, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    key = make_key(session)
    caplog.set_level("INFO", logger="app.access")
    headers = JSON | {"Authorization": f"Bearer {key.key}"}
    _post(client, "/v1/evaluate", json.dumps(EVALUATE).encode(), headers)
    (line,) = [r for r in caplog.records if r.name == "app.access"]
    assert (line.route, line.status) == ("/v1/evaluate", 200)  # type: ignore[attr-defined]
    assert line.clinic_id == str(key.clinic_id)  # type: ignore[attr-defined]


def test_the_request_bodies_are_documented_from_the_models(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, model in (("/v1/evaluate", "EvaluateCreate"), ("/v1/screenings", "ScreeningCreate")):
        operation = document["paths"][path]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}
        assert operation["security"] == [{"HTTPBearer": []}]
    assert "Subject" in document["components"]["schemas"]
    parameters = document["paths"]["/v1/screenings"]["post"]["parameters"]
    assert [p["name"] for p in parameters] == ["Idempotency-Key"]
