"""Denials without a valid credential are counted per minute, not an audit event each."""

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.apikey.ratelimit import RateLimiter
from app.audit import denials
from app.context import app_context
from app.db.models import AuditEvent
from tests.factories import FixedClock, auth, count, make_key


def _counted(session: Session) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == denials.COUNTED_ACTION)
    return list(session.scalars(query.order_by(AuditEvent.seq)))


def test_a_flood_of_bad_keys_appends_one_event_per_minute(
    app: FastAPI, session: Session, clock: FixedClock
) -> None:
    with TestClient(app) as client:
        before = count(session, AuditEvent)  # after startup's own events
        for _ in range(200):
            response = client.get("/v1/screenings", headers=auth("sk_guessed"))
            assert response.status_code == 401
        for _ in range(50):
            assert client.post("/v1/screenings", json={}).status_code == 401
        assert count(session, AuditEvent) == before  # counted in memory so far
        clock.at += timedelta(minutes=1)
        assert client.get("/v1/screenings").status_code == 401  # a new window: the old is written
        assert count(session, AuditEvent) == before + 1
    # shutdown writes the last window (the one request of the new minute)
    assert count(session, AuditEvent) == before + 2
    first, last = _counted(session)
    assert first.detail is not None
    assert last.detail is not None
    assert first.detail["total"] == 250
    assert first.detail["window_seconds"] == 60
    assert first.detail["window_started_at"].endswith(":00Z")
    # one entry per route and source: GET and POST share the route template
    assert [(c["route"], c["status"], c["count"]) for c in first.detail["counts"]] == [
        ("/v1/screenings", 401, 250)
    ]
    assert all(c["source"] == "testclient" for c in first.detail["counts"])
    assert last.detail["total"] == 1
    assert first.clinic_id is None
    assert first.actor_type == "system"
    assert "sk_guessed" not in str(first.detail)


def test_rate_limited_requests_are_counted_with_their_credential(
    app: FastAPI, session: Session
) -> None:
    key = make_key(session)
    app_context(app).components[RateLimiter] = RateLimiter(1, 2, now=lambda: 0.0)
    with TestClient(app) as client:
        before = count(session, AuditEvent)
        statuses = [client.get("/v1/screenings", headers=auth(key)).status_code for _ in range(40)]
    assert statuses.count(429) == 38
    # two listings (one event each) and one counted event for the 38 refusals
    assert count(session, AuditEvent) == before + 3
    (counted,) = _counted(session)
    assert counted.detail is not None
    (entry,) = counted.detail["counts"]
    assert (entry["status"], entry["count"]) == (429, 38)
    assert entry["actor_id"] == f"api_key:{key.api_key_id}"


def test_the_tally_is_bounded_but_still_totals() -> None:
    tally = denials.DenialTally(max_keys=10)
    now = FixedClock().now()
    for source in range(1000):
        assert (
            tally.add(now, ("/v1/screenings", f"10.0.{source // 256}.{source % 256}", 401, None))
            is None
        )
    window = tally.take()
    assert window is not None
    assert window.total == 1000
    assert len(window.counts) == 10
    assert tally.take() is None
