"""API keys: 401 without a valid key, 403 without the scope, 404 across clinics."""

import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.db.models import ApiKey
from app.engine import Ruleset
from tests.factories import CANDIDATE_ANSWERS, auth, make_key, make_screening

EVALUATE = {"questionnaire": "ketamine-infusion-candidacy", "answers": CANDIDATE_ANSWERS}
SUBMIT = EVALUATE | {"subject": {"reference": "MRN-1"}}
# A fixed id that no test stores: the test ids stay the same from run to run (xdist compares them).
UNKNOWN_SCREENING = "f1001c0d-5aac-46eb-801f-38a44a1803d7"
ROUTES = [
    ("POST", "/v1/evaluate", EVALUATE),
    ("POST", "/v1/screenings", SUBMIT),
    ("GET", f"/v1/screenings/{UNKNOWN_SCREENING}", None),
    ("GET", "/v1/screenings", None),
    ("GET", "/v1/questionnaires/ketamine-infusion-candidacy", None),
    ("GET", f"/v1/rulesets/{'0' * 64}", None),
]


@pytest.mark.parametrize(("method", "path", "json"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk_unknown"},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "unknown", "basic", "empty"],
)
def test_api_requires_a_valid_key(
    client: TestClient, method: str, path: str, json: object, headers: dict[str, str]
) -> None:
    response = client.request(method, path, json=json, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


def test_revoked_key_is_401(client: TestClient, session: Session) -> None:
    key = make_key(session)
    session.execute(
        update(ApiKey).where(ApiKey.id == key.api_key_id).values(revoked_at=datetime.now(UTC))
    )
    session.flush()
    assert client.get("/v1/screenings", headers=auth(key)).status_code == 401


@pytest.mark.parametrize(
    ("scopes", "method", "path", "json"),
    [
        (("screenings:read",), "POST", "/v1/screenings", SUBMIT),
        (("screenings:read",), "POST", "/v1/evaluate", EVALUATE),
        (("screenings:write",), "GET", "/v1/screenings", None),
        (("screenings:write",), "GET", f"/v1/screenings/{UNKNOWN_SCREENING}", None),
        (("invitations:write",), "GET", "/v1/screenings", None),
    ],
)
def test_missing_scope_is_403(
    client: TestClient,
    session: Session,
    scopes: tuple[str, ...],
    method: str,
    path: str,
    json: object,
) -> None:
    key = make_key(session, scopes=scopes)
    response = client.request(method, path, json=json, headers=auth(key))
    assert response.status_code == 403
    assert "scope" in response.json()["detail"]


def test_other_clinics_screening_is_404(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    owner, other = make_key(session), make_key(session)
    screening = make_screening(session, ruleset=ruleset, clinic_id=owner.clinic_id)
    path = f"/v1/screenings/{screening['id']}"
    assert client.get(path, headers=auth(owner)).status_code == 200
    response = client.get(path, headers=auth(other))
    assert response.status_code == 404
    assert (
        response.json() == client.get(f"/v1/screenings/{uuid.uuid4()}", headers=auth(other)).json()
    )
    listed = client.get("/v1/screenings", headers=auth(other)).json()
    assert listed == {"items": [], "next_cursor": None}
