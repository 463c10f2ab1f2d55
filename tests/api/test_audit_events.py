"""GET /v1/audit/events: a clinic reads its own trail (scope audit:read), keyset paginated."""

import uuid
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.apikey import service as apikey_service
from app.audit import canonical
from app.audit.verify import verify_chain
from app.db.models import AuditEvent
from app.engine import Ruleset
from app.screening import store
from tests.factories import KEYRING, auth, make_key, make_screening

AUDITOR = (apikey_service.SCREENINGS_READ, apikey_service.AUDIT_READ)
FIELDS = {
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "target_sha256",
    "outcome",
    "request_id",
    "ruleset_sha256",
    "detail",
    "hash",
    "prev_hash",
}


def events(client: TestClient, key: Any, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/audit/events", params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def test_a_screenings_trail_lists_its_events_in_chain_order(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session, scopes=AUDITOR)
    screening = make_screening(session, ruleset=ruleset, clinic_id=key.clinic_id)
    read = client.get(f"/v1/screenings/{screening['id']}", headers=auth(key))
    page = events(client, key, target=f"screening:{screening['id']}")
    assert [item["action"] for item in page["items"]] == ["screening.created", "screening.read"]
    assert page["next_cursor"] is None
    item = page["items"][1]
    assert set(item) == FIELDS
    stored = session.get_one(AuditEvent, item["seq"])
    assert item == {
        "seq": stored.seq,
        "occurred_at": canonical.format_datetime(stored.occurred_at),
        "actor_type": "api_key",
        "actor_id": str(key.api_key_id),
        "action": "screening.read",
        "target_type": "screening",
        "target_id": screening["id"],
        "target_sha256": stored.target_sha256,
        "outcome": "success",
        "request_id": read.headers["x-request-id"],
        "ruleset_sha256": ruleset.sha256,
        "detail": {"via": "api"},
        "hash": stored.hash,
        "prev_hash": stored.prev_hash,
    }
    assert page["items"][0]["hash"] == session.get_one(AuditEvent, page["items"][0]["seq"]).hash


def test_reading_the_trail_is_audited(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session, scopes=AUDITOR)
    screening = make_screening(session, ruleset=ruleset, clinic_id=key.clinic_id)
    target = f"screening:{screening['id']}"
    response = client.get("/v1/audit/events", params={"target": target}, headers=auth(key))
    listed = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.listed")).one()
    assert (listed.target_type, listed.target_id) == ("screening", screening["id"])
    assert (listed.clinic_id, listed.actor_id) == (key.clinic_id, str(key.api_key_id))
    assert listed.request_id == response.headers["x-request-id"]
    assert listed.detail == {"count": 1, "first_seq": listed.seq - 1, "last_seq": listed.seq - 1}
    # The next read of the same trail shows the earlier read.
    again = events(client, key, target=target)
    assert [item["action"] for item in again["items"]] == ["screening.created", "audit.listed"]
    assert verify_chain(session, screenings=partial(store.content_digest, KEYRING)).ok


def test_keyset_pagination_walks_every_event_once(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session, scopes=AUDITOR)
    for _ in range(5):
        make_screening(session, ruleset=ruleset, clinic_id=key.clinic_id)
    expected = list(
        session.scalars(
            select(AuditEvent.seq)
            .where(AuditEvent.clinic_id == key.clinic_id)
            .order_by(AuditEvent.seq)
        )
    )
    seen: list[int] = []
    page = events(client, key, limit=2)
    while True:
        assert len(page["items"]) <= 2
        seen += [item["seq"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        page = events(client, key, limit=2, cursor=page["next_cursor"])
    # Each page read is audited too: those events come after the ones listed so far.
    assert seen[: len(expected)] == expected
    assert seen == sorted(set(seen))


def test_a_clinic_sees_only_its_own_events(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    mine, theirs = make_key(session, scopes=AUDITOR), make_key(session, scopes=AUDITOR)
    make_screening(session, ruleset=ruleset, clinic_id=theirs.clinic_id)
    page = events(client, mine)
    assert page["items"]
    clinic_events = set(
        session.scalars(select(AuditEvent.seq).where(AuditEvent.clinic_id == mine.clinic_id))
    )
    assert {item["seq"] for item in page["items"]} <= clinic_events


def test_another_clinics_screening_is_404_like_an_unknown_one(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    mine, theirs = make_key(session, scopes=AUDITOR), make_key(session, scopes=AUDITOR)
    screening = make_screening(session, ruleset=ruleset, clinic_id=theirs.clinic_id)
    responses = [
        client.get("/v1/audit/events", params={"target": target}, headers=auth(mine))
        for target in (f"screening:{screening['id']}", f"screening:{uuid.uuid4()}")
    ]
    assert [response.status_code for response in responses] == [404, 404]
    assert responses[0].json() == responses[1].json()
    assert responses[0].headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "scopes",
    [apikey_service.DEFAULT_SCOPES, (apikey_service.SCREENINGS_READ,)],
    ids=["default", "screenings_read"],
)
def test_audit_read_scope_is_required(
    client: TestClient, session: Session, scopes: tuple[str, ...]
) -> None:
    key = make_key(session, scopes=scopes)
    response = client.get("/v1/audit/events", headers=auth(key))
    assert response.status_code == 403
    assert "audit:read" in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"target": "screening:"},
        {"target": "Screening:x"},
        {"target": "screening:a b"},
        {"cursor": "-1"},
        {"cursor": "abc"},
        {"limit": "0"},
        {"limit": "501"},
    ],
)
def test_malformed_queries_are_422(
    client: TestClient, session: Session, params: dict[str, str]
) -> None:
    key = make_key(session, scopes=AUDITOR)
    response = client.get("/v1/audit/events", params=params, headers=auth(key))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_apikey_create_accepts_the_audit_read_scope(session: Session) -> None:
    key = make_key(session, scopes=("audit:read",))
    assert key.api_key_id
    assert "audit:read" in apikey_service.SCOPES
    assert "audit:read" not in apikey_service.DEFAULT_SCOPES
