"""Outbox, dispatch, ordering, signatures, retries and replay, with an in-process worker."""

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from app.account import service as account_service
from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.db.models import (
    Clinic,
    DeliveryStatus,
    Invitation,
    UserAccount,
    WebhookDelivery,
    WebhookEvent,
)
from app.engine import Ruleset
from app.form import service as form_service
from app.invitation import service as invitation_service
from app.review import service as review_service
from app.rulepack import service as rulepack_service
from app.screening import store
from app.webhook import worker
from tests.factories import (
    CANDIDATE_ANSWERS,
    KEYRING,
    NEEDS_REVIEW_ANSWERS,
    NOW,
    auth,
    make_key,
)
from tests.review.seed import make_user
from tests.webhook.support import Received, receiver

ALL = ["screening.created", "screening.flagged", "screening.reviewed", "invitation.completed"]


@dataclass
class Clock:
    at: datetime = NOW

    def __call__(self) -> datetime:
        return self.at


@dataclass
class FakeSender:
    """Answers from a script (default 204) and records (event id, type, screening)."""

    script: list[int] = field(default_factory=list)
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, claimed: worker.Claimed, now: datetime, timeout: float) -> worker.Sent:
        status = self.script.pop(0) if self.script else 204
        data = json.loads(claimed.body)
        key = data["data"]["screening_id"]
        if 200 <= status < 300:
            self.sent.append((claimed.event_id, data["type"], key))
        return worker.Sent(status, None if status < 300 else f"HTTP {status}")


@pytest.fixture
def admin(session: Session) -> dict[str, str]:
    scopes = (*apikey_service.DEFAULT_SCOPES, apikey_service.WEBHOOKS_WRITE)
    return auth(make_key(session, scopes=scopes))


@pytest.fixture
def sink() -> Iterator[Received]:
    with receiver() as received:
        yield received


def _add(client: TestClient, headers: dict[str, str], url: str, events: list[str] = ALL) -> str:
    created = client.post("/v1/webhooks", json={"url": url, "events": events}, headers=headers)
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


def _screen(client: TestClient, headers: dict[str, str], answers: dict[str, Any]) -> str:
    body = {"questionnaire": "ketamine-infusion-candidacy",
            "subject": {"reference": "MRN-SECRET-77"}, "answers": answers}  # fmt: skip
    created = client.post("/v1/screenings", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _deliverer(factory: sessionmaker[Session], clock: Clock, sender: Any) -> worker.Deliverer:
    policy = worker.Policy(base_delay=10.0, max_delay=3600.0)
    return worker.Deliverer(factory, KEYRING, policy, clock, sender, random.Random(7))


def _drain(deliverer: worker.Deliverer) -> None:
    while deliverer.run_once():
        pass


def test_outbox_rows_are_thin_and_in_the_changes_transaction(
    client: TestClient, session: Session, admin: dict[str, str]
) -> None:
    flagged = _screen(client, admin, NEEDS_REVIEW_ANSWERS)
    _screen(client, admin, CANDIDATE_ANSWERS)
    rejected = client.post("/v1/screenings", json={"questionnaire": "x", "subject": {
        "reference": "r"}, "answers": {}}, headers=admin)  # fmt: skip
    assert rejected.status_code == 422
    events = session.scalars(select(WebhookEvent).order_by(WebhookEvent.audit_seq)).all()
    assert [event.type for event in events] == [
        "screening.created",
        "screening.flagged",
        "screening.created",
    ]
    data = events[1].payload["data"]
    assert data == {
        "screening_id": flagged,
        "decision": "needs_review",
        "rules": ["elevated_blood_pressure"],
        "source": "api",
        "links": {
            "screening": f"/v1/screenings/{flagged}",
            "review": f"/review/screenings/{flagged}",
        },
    }
    text = json.dumps([event.payload for event in events])
    assert "MRN-SECRET-77" not in text
    assert "systolic" not in text
    assert len({event.id for event in events}) == 3


def test_signed_delivery_verifies_with_standardwebhooks(
    client: TestClient, session_factory: sessionmaker[Session], admin: dict[str, str],
    sink: Received,
) -> None:  # fmt: skip
    secret = _add(client, admin, sink.url)
    screening = _screen(client, admin, NEEDS_REVIEW_ANSWERS)
    # The receiver checks the timestamp against its own clock: sign with the real time.
    _drain(_deliverer(session_factory, Clock(datetime.now(UTC)), worker.send))
    assert len(sink.requests) == 2
    for headers, body in sink.requests:
        assert headers["webhook-id"].startswith("msg_")
        verified = Webhook(secret).verify(body, headers)
        assert verified["data"]["screening_id"] == screening
        with pytest.raises(Exception, match="signature"):
            Webhook("whsec_" + "A" * 44).verify(body, headers)
    assert [body["type"] for body in sink.bodies()] == ["screening.created", "screening.flagged"]


def test_order_per_screening_survives_a_failed_first_attempt(
    client: TestClient, session_factory: sessionmaker[Session], admin: dict[str, str]
) -> None:
    _add(client, admin, "http://127.0.0.1:9/never-called")
    first = _screen(client, admin, NEEDS_REVIEW_ANSWERS)
    second = _screen(client, admin, NEEDS_REVIEW_ANSWERS)
    clock, sender = Clock(), FakeSender(script=[503])
    deliverer = _deliverer(session_factory, clock, sender)
    _drain(deliverer)
    # `first`'s created failed: its flagged waits behind it; `second` went through.
    assert [(kind, key) for _, kind, key in sender.sent] == [
        ("screening.created", second),
        ("screening.flagged", second),
    ]
    clock.at += timedelta(hours=1)
    _drain(deliverer)
    assert [(kind, key) for _, kind, key in sender.sent[2:]] == [
        ("screening.created", first),
        ("screening.flagged", first),
    ]


def test_backoff_grows_with_jitter_then_fails_after_24_hours(
    client: TestClient, session: Session, session_factory: sessionmaker[Session],
    admin: dict[str, str],
) -> None:  # fmt: skip
    _add(client, admin, "http://127.0.0.1:9/down", events=["screening.created"])
    _screen(client, admin, CANDIDATE_ANSWERS)
    clock = Clock()
    deliverer = _deliverer(session_factory, clock, FakeSender(script=[500] * 1000))
    gaps = []
    while True:
        deliverer.run_once()
        delivery = session.scalars(select(WebhookDelivery)).one()
        session.refresh(delivery)
        if delivery.status is not DeliveryStatus.pending:
            break
        gaps.append((delivery.next_attempt_at - clock.at).total_seconds())
        clock.at = delivery.next_attempt_at
    assert delivery.status is DeliveryStatus.failed
    assert clock.at - NOW >= timedelta(hours=24)
    assert delivery.last_error == "HTTP 500"
    assert delivery.attempts == len(gaps) + 1
    for attempt, gap in enumerate(gaps, start=1):
        ceiling = min(10.0 * 2 ** (attempt - 1), 3600.0)
        assert ceiling / 2 <= gap <= ceiling
    assert len(set(gaps)) > len(gaps) // 2  # jittered, not a fixed schedule


def test_replay_resends_with_the_same_id(
    client: TestClient, session_factory: sessionmaker[Session], admin: dict[str, str]
) -> None:
    endpoint = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x",
                           "events": ["screening.created"]}, headers=admin).json()  # fmt: skip
    _screen(client, admin, CANDIDATE_ANSWERS)
    sender = FakeSender()
    deliverer = _deliverer(session_factory, Clock(), sender)
    _drain(deliverer)
    log = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=admin).json()["items"]
    assert [(row["status"], row["attempts"]) for row in log] == [("delivered", 1)]
    replayed = client.post(f"/v1/webhooks/deliveries/{log[0]['id']}/replay", headers=admin)
    assert replayed.status_code == 202
    _drain(deliverer)
    assert len(sender.sent) == 2
    assert sender.sent[0][0] == sender.sent[1][0] == log[0]["event_id"]


def test_subscriptions_and_later_endpoints(
    client: TestClient, session: Session, session_factory: sessionmaker[Session],
    admin: dict[str, str], clock: Any,
) -> None:  # fmt: skip
    _screen(client, admin, NEEDS_REVIEW_ANSWERS)  # before any endpoint: never sent
    clock.at = NOW + timedelta(seconds=1)
    _add(client, admin, "http://127.0.0.1:9/flagged-only", events=["screening.flagged"])
    clock.at = NOW + timedelta(seconds=2)
    _screen(client, admin, CANDIDATE_ANSWERS)  # not flagged: nothing for this endpoint
    flagged = _screen(client, admin, NEEDS_REVIEW_ANSWERS)
    sender = FakeSender()
    _drain(_deliverer(session_factory, Clock(NOW + timedelta(seconds=3)), sender))
    assert [(kind, key) for _, kind, key in sender.sent] == [("screening.flagged", flagged)]


def test_review_emits_screening_reviewed(
    client: TestClient, session: Session, session_factory: sessionmaker[Session]
) -> None:
    scopes = (*apikey_service.DEFAULT_SCOPES, apikey_service.WEBHOOKS_WRITE)
    admin = auth(make_key(session, clinic_name="Hook clinic", scopes=scopes))
    _add(client, admin, "http://127.0.0.1:9/x", events=["screening.reviewed"])
    screening = uuid.UUID(_screen(client, admin, NEEDS_REVIEW_ANSWERS))
    user = make_user(session, clinic="Hook clinic", email="dr.hook@example.test")
    physician = account_service.principal_of(session.get_one(UserAccount, user.user_id))
    review_service.record(
        session,
        keyring=KEYRING,
        reviewer=physician,
        screening_id=screening,
        review=review_service.ReviewInput(review_service.Disposition.cleared),
        if_match=store.current_etag(session, clinic_id=physician.clinic_id, screening_id=screening),
        now=NOW,
    )
    session.commit()
    sender = FakeSender()
    _drain(_deliverer(session_factory, Clock(), sender))
    assert [(kind, key) for _, kind, key in sender.sent] == [("screening.reviewed", str(screening))]


def test_webhooks_api_needs_the_scope_and_hides_secrets(
    client: TestClient, session: Session, admin: dict[str, str]
) -> None:
    plain = auth(make_key(session))
    body = {"url": "https://hooks.example.test/x", "events": ["screening.created"]}
    assert client.post("/v1/webhooks", json=body, headers=plain).status_code == 403
    created = client.post("/v1/webhooks", json=body, headers=admin)
    assert created.json()["secret"].startswith("whsec_")
    listed = client.get("/v1/webhooks", headers=admin).json()["items"]
    assert [set(item) for item in listed] == [{"id", "url", "events", "created_at"}]
    bad = client.post("/v1/webhooks", json={"url": "ftp://x", "events": ["screening.created"]},
                      headers=admin)  # fmt: skip
    assert bad.status_code == 422
    other = auth(make_key(session, scopes=(apikey_service.WEBHOOKS_WRITE,)))
    endpoint = created.json()["id"]
    assert client.delete(f"/v1/webhooks/{endpoint}", headers=other).status_code == 404
    assert client.delete(f"/v1/webhooks/{endpoint}", headers=admin).status_code == 204
    assert client.get("/v1/webhooks", headers=admin).json()["items"] == []


def test_form_submission_emits_invitation_completed_after_created(
    client: TestClient, session: Session, session_factory: sessionmaker[Session],
    admin: dict[str, str], ruleset: Ruleset,
) -> None:  # fmt: skip
    _add(client, admin, "http://127.0.0.1:9/x")
    key = apikey_service.authenticate(session, key=admin["Authorization"].split()[1])
    assert key is not None
    rulepack_service.store_rule_pack(session, ruleset=ruleset, now=NOW)
    clinic_name = session.get_one(Clinic, key.clinic_id).name
    invitation_service.configure_clinic(  # invitations need the clinic's phone (issue 17)
        session,
        clinic_name=clinic_name,
        phone="(555) 010-0000",
        form_origins=None,
        actor=audit_service.Actor.cli(),
    )
    invited = invitation_service.create(
        session, keyring=KEYRING, clinic_id=key.clinic_id, subject={"reference": "MRN-9"},
        language="en", expires_at=None, now=NOW, actor=audit_service.Actor.cli(),
    )  # fmt: skip
    screening = form_service.submit(
        session, ruleset=ruleset, keyring=KEYRING,
        invitation=session.get_one(Invitation, invited.invitation_id),
        clinic=invitation_service.ClinicInfo.of(session.get_one(Clinic, key.clinic_id)),
        answers=CANDIDATE_ANSWERS, now=NOW, as_of=NOW.date(),
    )  # fmt: skip
    session.commit()
    sender = FakeSender()
    _drain(_deliverer(session_factory, Clock(), sender))
    assert [(kind, key) for _, kind, key in sender.sent] == [
        ("screening.created", str(screening)),
        ("invitation.completed", str(screening)),
    ]
    event = session.scalars(
        select(WebhookEvent).where(WebhookEvent.type == "invitation.completed")
    ).one()
    assert event.payload["data"]["invitation_id"] == str(invited.invitation_id)
    assert "MRN-9" not in json.dumps(event.payload)
