"""Personal tokens are not intake keys: review API only, audited as their user (issue 15)."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.account import tokens as account_tokens
from app.audit import service as audit_service
from app.db.models import ActorType, AuditEvent, AuditOutcome, Screening, UserAccount
from app.engine import Ruleset
from tests.factories import CANDIDATE_ANSWERS, FixedClock, auth
from tests.review.seed import csrf_of, https_client, seed_queue, sign_in

NEW_PASSWORD = "a long and private sentence"
SCREENING = {"questionnaire": "ketamine-infusion", "answers": CANDIDATE_ANSWERS}
INTAKE_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/screenings", SCREENING | {"subject": {"reference": "MRN-1"}}),
    ("POST", "/v1/evaluate", SCREENING),
    ("GET", "/v1/screenings", None),
    ("POST", "/v1/invitations", {"subject": {"reference": "MRN-2"}}),
    ("GET", "/v1/questionnaires/ketamine-infusion", None),
    ("GET", "/v1/audit/events", None),
    ("GET", "/v1/webhooks", None),
]


def _token(session: Session, email: str, clock: FixedClock, **extra: Any) -> str:
    return account_tokens.create_token(
        session, email=email, actor=audit_service.Actor.cli(), now=clock.now(), **extra
    )


def _user_id(session: Session, email: str) -> str:
    return str(session.scalars(select(UserAccount.id).where(UserAccount.email == email)).one())


@pytest.mark.parametrize(("method", "path", "body"), INTAKE_CALLS)
def test_intake_routes_answer_403_to_a_personal_token(
    client: TestClient,
    session: Session,
    ruleset: Ruleset,
    clock: FixedClock,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    token = _token(session, seeded.physician, clock)
    stored = len(session.scalars(select(Screening.id)).all())
    response = client.request(method, path, json=body, headers=auth(token))
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "review API" in response.json()["detail"]
    assert len(session.scalars(select(Screening.id)).all()) == stored
    # A denial on an audited route names the user, never the token as an api_key actor.
    denials = session.scalars(
        select(AuditEvent).where(AuditEvent.outcome == AuditOutcome.denied)
    ).all()
    user_id = _user_id(session, seeded.physician)
    assert {(event.actor_type, event.actor_id) for event in denials} <= {(ActorType.user, user_id)}
    if path in ("/v1/screenings", "/v1/audit/events"):
        assert denials, "the denial was not audited"


def test_the_reads_a_review_needs_accept_a_personal_token_audited_as_its_user(
    client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    headers = auth(_token(session, seeded.physician, clock))
    target = seeded.queue[0]
    for path in (f"/v1/screenings/{target}", f"/v1/screenings/{target}/explain"):
        assert client.get(path, headers=headers).status_code == 200, path
    etag = client.get(f"/v1/screenings/{target}", headers=headers).headers["etag"]
    review = {"disposition": "declined", "note": "Heart failure: refer."}
    signed = client.post(
        f"/v1/screenings/{target}/reviews", json=review, headers=headers | {"If-Match": etag}
    )
    assert signed.status_code == 201, signed.text
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action.in_(["screening.read", "screening.explained", "review.recorded"]),
            AuditEvent.target_id == target,
        )
    ).all()
    assert {event.action for event in events} == {
        "screening.read",
        "screening.explained",
        "review.recorded",
    }
    user_id = _user_id(session, seeded.physician)
    assert {(event.actor_type, event.actor_id) for event in events} == {(ActorType.user, user_id)}


def test_an_expired_personal_token_is_refused_on_its_first_request_after_expiry(
    client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    token = _token(session, seeded.physician, clock, expires_at=clock.now() + timedelta(hours=1))
    path = f"/v1/screenings/{seeded.queue[0]}"
    assert client.get(path, headers=auth(token)).status_code == 200  # now cached
    clock.at += timedelta(minutes=59)
    assert client.get(path, headers=auth(token)).status_code == 200
    clock.at += timedelta(minutes=1)
    for url in (path, f"{path}/reviews"):  # the key cache and the review API alike
        refused = client.get(url, headers=auth(token))
        assert refused.status_code == 401, url
        assert "expired" in refused.json()["detail"]


def test_a_password_change_ends_the_users_tokens_on_the_next_request_of_this_process(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    token = _token(session, seeded.physician, clock)
    path = f"/v1/screenings/{seeded.queue[0]}"
    with https_client(app) as browser:
        assert browser.get(path, headers=auth(token)).status_code == 200  # cached by the app
        assert sign_in(browser, seeded.physician).status_code == 303
        csrf = csrf_of(browser.get("/account/password").text)
        changed = browser.post(
            "/account/password",
            data={"csrf_token": csrf, "current_password": "correct horse battery staple",
                  "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                  "next": "/review"},
        )  # fmt: skip
        assert changed.status_code == 303, changed.text
        refused = browser.get(path, headers=auth(token))
        assert refused.status_code == 401
        assert browser.get("/review").status_code == 200  # the session that changed it stays
    revoked = session.scalars(select(AuditEvent).where(AuditEvent.action == "apikey.revoked")).all()
    assert [event.detail for event in revoked] == [
        {"reason": "password_changed", "user_id": _user_id(session, seeded.physician)}
    ]


def test_the_fhir_intake_routes_answer_403_to_a_personal_token(
    client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    headers = auth(_token(session, seeded.physician, clock))
    read = client.get("/fhir/Questionnaire/ketamine-infusion", headers=headers)
    assert read.status_code == 403, read.text
    submitted = client.post(
        "/fhir/QuestionnaireResponse",
        content=b'{"resourceType": "QuestionnaireResponse"}',
        headers=headers | {"Content-Type": "application/fhir+json"},
    )
    assert submitted.status_code == 403, submitted.text
    assert "review API" in read.text
