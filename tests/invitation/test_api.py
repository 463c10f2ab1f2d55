"""POST /v1/invitations: scope, link, expiry, language, hashing, audit."""

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.apikey.service import CreatedKey
from app.context import app_context
from app.db.models import AuditEvent, Clinic, Invitation
from tests.factories import KEYRING, NOW, auth, make_key

BODY = {"subject": {"reference": "MRN-0042"}}


def _phoned_key(session: Session, **options: Any) -> CreatedKey:
    """A key of a clinic with a phone number (required to invite patients)."""
    key = make_key(session, **options)
    session.get_one(Clinic, key.clinic_id).phone = "+1 555 0100"
    session.flush()
    return key


def test_create_returns_a_single_link_with_the_default_expiry(
    client: TestClient, session: Session
) -> None:
    key = _phoned_key(session)
    response = client.post("/v1/invitations", json=BODY, headers=auth(key))
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"url", "expires_at"}
    assert body["expires_at"] == "2026-06-22T14:30:00Z"
    prefix = f"http://testserver/form/{key.clinic_id}/"
    assert body["url"].startswith(prefix)
    token = body["url"].removeprefix(prefix)
    assert len(token) >= 43  # 32 random bytes, URL-safe base64: 256 bits
    row = session.scalars(select(Invitation)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.clinic_id == key.clinic_id
    assert row.language == "en"
    for column in (row.subject_ct, row.token_hash.encode()):
        assert token.encode() not in column
        assert b"MRN-0042" not in column
    assert token not in str(session.scalars(select(AuditEvent)).all()[-1].detail)


def test_two_invitations_get_different_tokens(client: TestClient, session: Session) -> None:
    key = _phoned_key(session)
    urls = {
        client.post("/v1/invitations", json=BODY, headers=auth(key)).json()["url"] for _ in "ab"
    }
    assert len(urls) == 2


def test_language_and_expiry_can_be_chosen(client: TestClient, session: Session) -> None:
    key = _phoned_key(session)
    expires = (NOW + timedelta(days=2)).isoformat()
    body = BODY | {"language": "es", "expires_at": expires}
    response = client.post("/v1/invitations", json=body, headers=auth(key))
    assert response.status_code == 201
    assert response.json()["expires_at"] == "2026-06-17T14:30:00Z"
    assert session.scalars(select(Invitation)).one().language == "es"


@pytest.mark.parametrize(
    "extra",
    [
        {"expires_at": (NOW - timedelta(minutes=1)).isoformat()},
        {"expires_at": (NOW + timedelta(days=31)).isoformat()},
        {"expires_at": "2026-06-20T10:00:00"},  # no offset
        {"language": "fr"},
        {"subject": {"reference": ""}},
        {"unknown": 1},
    ],
)
def test_invalid_requests_are_rejected_and_store_nothing(
    client: TestClient, session: Session, extra: dict[str, object]
) -> None:
    key = _phoned_key(session)
    response = client.post("/v1/invitations", json=BODY | extra, headers=auth(key))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert session.scalars(select(Invitation)).all() == []


def test_the_invitations_scope_is_required(client: TestClient, session: Session) -> None:
    reader = _phoned_key(session, scopes=("screenings:read", "screenings:write"))
    assert client.post("/v1/invitations", json=BODY, headers=auth(reader)).status_code == 403
    assert client.post("/v1/invitations", json=BODY).status_code == 401
    assert session.scalars(select(Invitation)).all() == []


def test_creation_is_audited_without_the_token(client: TestClient, session: Session) -> None:
    key = _phoned_key(session)
    url = client.post("/v1/invitations", json=BODY, headers=auth(key)).json()["url"]
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert event is not None
    assert event.action == "invitation.created"
    assert event.actor_id == str(key.api_key_id)
    assert url.rsplit("/", 1)[1] not in repr(event.detail)
    assert KEYRING.current_kid == session.scalars(select(Invitation)).one().key_id


def test_link_uses_the_public_base_url_behind_a_proxy(app: FastAPI, session: Session) -> None:
    # Behind a reverse proxy the request's host is internal: the configured address wins.
    context = app_context(app)
    context.settings = context.settings.model_copy(
        update={"public_base_url": "https://intake.clinic.example/screening/"}
    )
    key = _phoned_key(session)
    with TestClient(app) as client:
        url = client.post("/v1/invitations", json=BODY, headers=auth(key)).json()["url"]
    assert url.startswith(f"https://intake.clinic.example/screening/form/{key.clinic_id}/")


def test_a_clinic_without_a_phone_number_cannot_invite(
    client: TestClient, session: Session
) -> None:
    key = make_key(session)
    response = client.post("/v1/invitations", json=BODY, headers=auth(key))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "screening form configure" in response.json()["detail"]
    assert "--phone" in response.json()["detail"]
    assert session.scalars(select(Invitation)).all() == []
