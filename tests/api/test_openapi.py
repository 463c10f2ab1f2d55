"""Responses are checked against the OpenAPI document (tests/openapi_check.py); the check bites."""

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import CANDIDATE_ANSWERS, auth, make_key
from tests.openapi_check import ResponseCheck, validate

BODY = {"questionnaire": "ketamine-infusion-candidacy", "answers": CANDIDATE_ANSWERS}


def _check(client: TestClient) -> ResponseCheck:
    (check,) = [hook for hook in client.event_hooks["response"] if isinstance(hook, ResponseCheck)]
    return check


def test_the_client_checks_every_documented_response(client: TestClient, session: Session) -> None:
    key = make_key(session)
    evaluated = client.post("/v1/evaluate", json=BODY, headers=auth(key))
    created = client.post("/v1/screenings", json=BODY | {"subject": {"reference": "R"}},
                          headers=auth(key))  # fmt: skip
    listed = client.get("/v1/screenings", headers=auth(key))
    denied = client.post("/v1/evaluate", json=BODY)
    assert [r.status_code for r in (evaluated, created, listed, denied)] == [200, 201, 200, 401]
    assert _check(client).checked == [
        ("POST", "/v1/evaluate", 200),
        ("POST", "/v1/screenings", 201),
        ("GET", "/v1/screenings", 200),
        ("POST", "/v1/evaluate", 401),
    ]


def test_a_body_off_its_schema_fails(app: FastAPI) -> None:
    document = app.openapi()
    schema = {"$ref": "#/components/schemas/EvaluationRead"}
    with pytest.raises(AssertionError, match="decision"):
        validate(document, schema, {"decision": "maybe", "flags": [], "ruleset": {}, "as_of": "x"})


def test_an_undocumented_status_fails(app: FastAPI) -> None:
    check = ResponseCheck(app)
    with TestClient(app) as client:
        response = client.get("/v1/questionnaires/x")  # a 401, documented
    check(response)
    response.status_code = 418
    with pytest.raises(AssertionError, match="undocumented"):
        check(response)


def test_the_shared_document_is_what_the_app_builds(
    app: FastAPI, openapi_document: dict[str, Any]
) -> None:
    # The app fixture is handed the document built once per backend (tests/conftest.py).
    app.openapi_schema = None
    assert app.openapi() == openapi_document
