"""The review API: ETag / If-Match (428, 412), who may sign (403), the override rule, audit."""

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.account import service as account_service
from app.account import tokens as account_tokens
from app.audit import service as audit_service
from app.auditlog import service as auditlog_service
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import AuditEvent, Review, UserAccount
from app.db.unit import session_scope
from app.engine import Ruleset
from app.review import service as review_service
from tests.factories import KEYRING, FixedClock, auth, make_key
from tests.review.seed import csrf_of, https_client, seed_queue, sign_in

CLEAR = {"disposition": "cleared", "note": "BP rechecked: 132/84."}


def _token(session: Session, email: str) -> dict[str, str]:
    token = account_tokens.create_token(
        session, email=email, actor=audit_service.Actor.cli(), now=datetime.now(UTC)
    )
    return auth(token)


def _etag(client: TestClient, screening_id: str, headers: dict[str, str]) -> str:
    response = client.get(f"/v1/screenings/{screening_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def test_get_screening_has_an_etag_that_changes_with_each_review(
    client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    headers = _token(session, seeded.physician)
    target = seeded.queue[3]  # elevated blood pressure: a review flag only
    before = _etag(client, target, headers)
    response = client.post(
        f"/v1/screenings/{target}/reviews", json=CLEAR, headers=headers | {"If-Match": before}
    )
    assert response.status_code == 201, response.text
    after = _etag(client, target, headers)
    assert after != before
    assert response.headers["etag"] == after
    body = response.json()
    assert body["disposition"] == "cleared"
    assert body["reviewer"]["name"] == "Dr Rivera"
    got = client.get(f"/v1/screenings/{target}", headers=headers).json()
    assert got["review"]["disposition"] == "cleared"


def test_review_without_if_match_is_428(
    client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    headers = _token(session, seeded.physician)
    response = client.post(f"/v1/screenings/{seeded.queue[3]}/reviews", json=CLEAR, headers=headers)
    assert response.status_code == 428
    assert response.headers["content-type"] == "application/problem+json"
    assert session.scalar(select(func.count()).select_from(Review)) == 0


def test_stale_if_match_is_412_naming_who_signed_first(
    client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    mine, theirs = _token(session, seeded.physician), _token(session, seeded.colleague)
    target = seeded.queue[3]
    etag = _etag(client, target, mine)
    first = client.post(
        f"/v1/screenings/{target}/reviews", json=CLEAR, headers=theirs | {"If-Match": etag}
    )
    assert first.status_code == 201
    second = client.post(
        f"/v1/screenings/{target}/reviews", json=CLEAR, headers=mine | {"If-Match": etag}
    )
    assert second.status_code == 412
    assert "already signed by Dr Okafor" in second.json()["detail"]
    assert second.headers["etag"] == first.headers["etag"]
    assert session.scalar(select(func.count()).select_from(Review)) == 1


@pytest.mark.parametrize("who", ["intake_key", "admin_token"])
def test_only_physicians_may_sign(
    client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock, who: str
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    physician = _token(session, seeded.physician)
    if who == "intake_key":
        headers = auth(make_key(session, clinic_name="Seed clinic"))
    else:
        headers = _token(session, seeded.admin)
    etag = _etag(client, seeded.queue[3], physician)
    response = client.post(
        f"/v1/screenings/{seeded.queue[3]}/reviews",
        json=CLEAR,
        headers=headers | {"If-Match": etag},
    )
    assert response.status_code == 403


def test_no_credentials_is_401(client: TestClient) -> None:
    response = client.post(
        f"/v1/screenings/{uuid.uuid4()}/reviews", json=CLEAR, headers={"If-Match": '"x"'}
    )
    assert response.status_code == 401


def test_another_clinics_screening_is_404(
    client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    ours = seed_queue(session, ruleset=ruleset, now=clock.now(), clinic="Clinic A")
    theirs = seed_queue(session, ruleset=ruleset, now=clock.now(), clinic="Clinic B")
    headers = _token(session, theirs.physician) | {"If-Match": '"whatever"'}
    response = client.post(f"/v1/screenings/{ours.queue[0]}/reviews", json=CLEAR, headers=headers)
    assert response.status_code == 404
    listed = client.get(f"/v1/screenings/{ours.queue[0]}/reviews", headers=headers)
    assert listed.status_code == 404


def test_cross_clinic_detail_page_is_404(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    ours = seed_queue(session, ruleset=ruleset, now=clock.now(), clinic="Clinic A")
    theirs = seed_queue(session, ruleset=ruleset, now=clock.now(), clinic="Clinic B")
    with https_client(app) as browser:
        sign_in(browser, theirs.physician)
        assert browser.get(f"/review/screenings/{ours.queue[0]}").status_code == 404
        assert ours.queue[0] not in browser.get("/review?status=all").text


class TestOverride:
    def test_clearing_a_fired_exclude_needs_a_reason_code_and_a_note(
        self, client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        headers = _token(session, seeded.physician)
        target = seeded.queue[0]  # heart failure: a fired exclude
        etag = _etag(client, target, headers)
        url = f"/v1/screenings/{target}/reviews"
        bare = client.post(
            url, json={"disposition": "cleared"}, headers=headers | {"If-Match": etag}
        )
        assert bare.status_code == 422
        pointers = {error["pointer"] for error in bare.json()["errors"]}
        assert pointers == {"#/override_reason", "#/note"}
        body = {
            "disposition": "cleared",
            "override_reason": "specialist_cleared",
            "note": "Cardiology letter: HFrEF resolved.",
        }
        ok = client.post(url, json=body, headers=headers | {"If-Match": etag})
        assert ok.status_code == 201, ok.text
        assert ok.json()["override_reason"] == "specialist_cleared"

    def test_declining_a_fired_exclude_needs_no_reason(
        self, client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        headers = _token(session, seeded.physician)
        etag = _etag(client, seeded.queue[0], headers)
        response = client.post(
            f"/v1/screenings/{seeded.queue[0]}/reviews",
            json={"disposition": "declined"},
            headers=headers | {"If-Match": etag},
        )
        assert response.status_code == 201

    def test_an_unknown_reason_code_is_422(
        self, client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        headers = _token(session, seeded.physician)
        etag = _etag(client, seeded.queue[0], headers)
        body = {"disposition": "cleared", "override_reason": "felt_like_it", "note": "x"}
        response = client.post(
            f"/v1/screenings/{seeded.queue[0]}/reviews",
            json=body,
            headers=headers | {"If-Match": etag},
        )
        assert response.status_code == 422


def test_reviews_are_append_only_and_the_latest_counts(
    client: TestClient, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    headers = _token(session, seeded.physician)
    target, url = seeded.queue[3], f"/v1/screenings/{seeded.queue[3]}/reviews"
    for disposition in ("needs_more_information", "cleared"):
        etag = _etag(client, target, headers)
        body = {"disposition": disposition, "note": f"step {disposition}"}
        assert client.post(url, json=body, headers=headers | {"If-Match": etag}).status_code == 201
    listed = client.get(url, headers=headers).json()["items"]
    assert [item["disposition"] for item in listed] == ["cleared", "needs_more_information"]
    assert (
        client.get(f"/v1/screenings/{target}", headers=headers).json()["review"]["disposition"]
        == "cleared"
    )
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "review.recorded", AuditEvent.target_id == target
        )
    ).all()
    assert len(events) == 2
    assert all("step" not in str(event.detail) for event in events)  # notes never in the audit
    assert events[0].target_sha256 is not None


def test_session_reviews_need_the_csrf_header(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    with https_client(app) as browser:
        sign_in(browser, seeded.physician)
        page = browser.get(f"/review/screenings/{seeded.queue[3]}")
        csrf = csrf_of(page.text)
        etag = review_service.etag(uuid.UUID(seeded.queue[3]), None)
        url = f"/v1/screenings/{seeded.queue[3]}/reviews"
        assert browser.post(url, json=CLEAR, headers={"If-Match": etag}).status_code == 403
        ok = browser.post(url, json=CLEAR, headers={"If-Match": etag, "X-CSRF-Token": csrf})
        assert ok.status_code == 201


def test_two_physicians_racing_store_exactly_one_review(
    empty_database_url: str, ruleset: Ruleset
) -> None:
    migrate.upgrade(migrate.make_config(database_url=empty_database_url))
    engine = make_engine(empty_database_url)
    factory = make_sessionmaker(engine)
    try:
        with session_scope(factory) as session:
            seeded = seed_queue(session, ruleset=ruleset, now=datetime.now(UTC))
            people = [
                account_service.principal_of(user)
                for user in _users(session, [seeded.physician, seeded.colleague])
            ]
        target = uuid.UUID(seeded.queue[3])
        etag = review_service.etag(target, None)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def sign(reviewer: account_service.Principal) -> None:
            barrier.wait()
            try:
                with session_scope(factory) as session:
                    review_service.record(
                        session, keyring=KEYRING, reviewer=reviewer, screening_id=target,
                        review=review_service.ReviewInput(review_service.Disposition.cleared, "ok"),
                        if_match=etag, now=datetime.now(UTC),
                    )  # fmt: skip
                outcomes.append("stored")
            except review_service.PreconditionFailed as error:
                outcomes.append("412" if error.latest is not None else "412 without a review")

        _run_threads([lambda: sign(people[0]), lambda: sign(people[1])])
        assert sorted(outcomes) == ["412", "stored"]
        with session_scope(factory) as session:
            assert session.scalar(select(func.count()).select_from(Review)) == 1
            assert auditlog_service.list_events(
                session, clinic_id=seeded.clinic_id, limit=500
            ).events
    finally:
        engine.dispose()


def _users(session: Session, emails: list[str]) -> list[UserAccount]:
    rows = session.scalars(select(UserAccount).where(UserAccount.email.in_(emails))).all()
    return sorted(rows, key=lambda user: emails.index(user.email))


def _run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
