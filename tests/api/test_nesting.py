"""JSON nested deeper than 64 levels is a 400 problem+json on every route that takes a body.

The limit is enforced once, in ``HttpMiddleware`` (app/observability.py), before any parser
or model sees the body: on the hot routes, on FastAPI-parsed routes, on the FHIR routes.
"""

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.models import Screening
from app.jsonbody import MAX_DEPTH, is_too_deep
from tests.factories import auth, count, make_key


def _nested(depth: int) -> bytes:
    """An object whose ``answers`` value is ``depth`` levels deep in all (the root counts)."""
    inner = b"[" * (depth - 2) + b"]" * (depth - 2)
    return b'{"questionnaire":"ketamine-infusion-candidacy","answers":{"a":' + inner + b"}}"


def _json_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document that takes a JSON request body."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if any("json" in media_type for media_type in content):
                found.append((method.upper(), path))
    return found


def _concrete(path: str) -> str:
    replacements = {"{screening_id}": "00000000-0000-4000-8000-000000000001"}
    for template, value in replacements.items():
        path = path.replace(template, value)
    return path.replace("{", "").replace("}", "")


def test_every_json_route_answers_400_to_a_body_nested_too_deep(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    key = make_key(session)
    routes = _json_routes(app)
    assert ("POST", "/v1/screenings") in routes
    assert ("POST", "/v1/screenings/{screening_id}/reviews") in routes
    assert len(routes) >= 8
    headers = auth(key) | {"Content-Type": "application/json", "If-Match": '"x"'}
    for method, path in routes:
        response = client.request(
            method, _concrete(path), content=_nested(MAX_DEPTH + 1), headers=headers
        )
        assert response.status_code == 400, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "nested more than 64 levels" in response.json()["detail"]
    assert count(session, Screening) == 0


@pytest.mark.parametrize("path", ["/v1/evaluate", "/v1/screenings"])
def test_a_body_at_the_limit_gets_its_usual_answer(
    client: TestClient, session: Session, path: str
) -> None:
    key = make_key(session)
    headers = auth(key) | {"Content-Type": "application/json"}
    response = client.post(path, content=_nested(MAX_DEPTH), headers=headers)
    assert response.status_code == 422  # a schema error, not a parse error
    assert response.json()["type"].endswith("validation-failed")


def test_a_deep_body_without_a_key_is_400_before_authentication(client: TestClient) -> None:
    response = client.post(
        "/v1/screenings",
        content=_nested(200),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_a_body_streamed_in_chunks_is_checked_whole(client: TestClient, session: Session) -> None:
    key = make_key(session)
    body = _nested(MAX_DEPTH + 1)

    def chunks() -> Any:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    response = client.post(
        "/v1/evaluate", content=chunks(), headers=auth(key) | {"Content-Type": "application/json"}
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[" * 64 + b"]" * 64, False),
        (b"[" * 65 + b"]" * 65, True),
        (b'{"a":"' + b"[" * 100 + b'"}', False),  # brackets inside a string do not nest
        (b'{"a":"\\"' + b"{" * 100 + b'"}', False),  # nor after an escaped quote
        (b"[" * 40 + b"]" * 40 + b"{" * 40 + b"}" * 40, False),  # many, but never deep
        (b'["\\\\",' + b"[" * 64 + b"]" * 65, True),  # an escaped backslash ends no string
    ],
)
def test_is_too_deep_counts_only_real_nesting(body: bytes, expected: bool) -> None:
    assert is_too_deep(body) is expected
