"""Errors on review pages are friendly HTML pages with their status and the security headers.

The JSON API (/v1) keeps RFC 9457 problem+json for the same kinds of error.
"""

import uuid
from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx2 import Response
from sqlalchemy.orm import Session

from app.account import sessions
from app.db.models import Review
from app.engine import Ruleset
from app.review import pages
from app.review import service as review_service
from tests.factories import FixedClock, count
from tests.review.seed import csrf_of, etag_of, https_client, seed_queue, sign_in


def _assert_page(response: Response, status: int, heading: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h1>{heading}</h1>" in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"
    assert 'href="/static/review/review.css"' in response.text


def _sign_off_with_note(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock, note: str
) -> Response:
    """A signed-in physician declines the first queued screening with ``note``."""
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    with https_client(app) as client:
        sign_in(client, seeded.physician)
        detail = client.get(f"/review/screenings/{seeded.queue[0]}")
        form = {"csrf_token": csrf_of(detail.text), "etag": etag_of(detail.text),
                "disposition": "declined", "note": note}  # fmt: skip
        return client.post(f"/review/screenings/{seeded.queue[0]}/sign-off", data=form)


@pytest.mark.parametrize(
    ("path", "status", "heading"),
    [
        ("/review/screenings/00000000-0000-4000-8000-000000000000", 404, "Page not found"),
        ("/review/no-such-page", 404, "Page not found"),
        ("/review/screenings/not-a-uuid", 422, "Something in the address or the form is not valid"),
        ("/review?page=0", 422, "Something in the address or the form is not valid"),
        ("/review/screenings/{id}/sign-off", 405, "This page cannot be used this way"),
    ],
    ids=["unknown-screening", "unknown-page", "bad-id", "bad-page-number", "get-on-a-form"],
)
def test_bad_addresses_get_an_error_page(
    app: FastAPI,
    session: Session,
    ruleset: Ruleset,
    clock: FixedClock,
    path: str,
    status: int,
    heading: str,
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    with https_client(app) as client:
        sign_in(client, seeded.physician)
        response = client.get(path.replace("{id}", seeded.queue[0]))
    _assert_page(response, status, heading)
    assert "Go to the review queue" in response.text


def test_another_clinics_screening_is_a_404_page(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    ours = seed_queue(session, ruleset=ruleset, now=clock.now(), clinic="Clinic A")
    theirs = seed_queue(session, ruleset=ruleset, now=clock.now(), clinic="Clinic B")
    with https_client(app) as client:
        sign_in(client, theirs.physician)
        page = client.get(f"/review/screenings/{ours.queue[0]}")
        _assert_page(page, 404, "Page not found")
        csrf = csrf_of(client.get("/review").text)
        form = {"csrf_token": csrf, "etag": '"x"', "disposition": "declined"}
        posted = client.post(f"/review/screenings/{ours.queue[0]}/sign-off", data=form)
    _assert_page(posted, 404, "Page not found")


def test_an_admin_signing_off_gets_a_403_page(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    with https_client(app) as client:
        sign_in(client, seeded.admin)
        detail = client.get(f"/review/screenings/{seeded.queue[0]}")
        assert detail.status_code == 200
        etag = review_service.etag(uuid.UUID(seeded.queue[0]), None)  # admins get no form
        form = {"csrf_token": csrf_of(detail.text), "etag": etag, "disposition": "declined"}
        response = client.post(f"/review/screenings/{seeded.queue[0]}/sign-off", data=form)
    _assert_page(response, 403, "You cannot do this")
    assert "Only a physician can sign off screenings." in response.text


def test_an_invalid_form_body_gets_a_422_page(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    response = _sign_off_with_note(app, session, ruleset, clock, "x" * 5000)
    _assert_page(response, 422, "Something in the address or the form is not valid")
    assert "x" * 100 not in response.text  # nothing submitted is echoed


def test_a_form_over_the_size_limit_gets_a_413_page_and_changes_nothing(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    response = _sign_off_with_note(app, session, ruleset, clock, "x" * 70_000)
    _assert_page(response, 413, "What you sent is too large")
    assert response.headers["x-request-id"] in response.text  # the reference to quote
    assert count(session, Review) == 0


def test_an_unexpected_failure_gets_a_500_page_with_a_reference(
    app: FastAPI,
    session: Session,
    ruleset: Ruleset,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())

    def broken(*_args: object, **_kwargs: object) -> pages.Page:
        raise RuntimeError("secret detail that must not be shown")

    with https_client(app) as client:
        sign_in(client, seeded.physician)
        monkeypatch.setattr(pages, "queue_page", broken)
        response = client.get("/review", headers={"X-Request-ID": "req-500-test"})
    _assert_page(response, 500, "Something went wrong on our side")
    assert "req-500-test" in response.text
    assert "secret detail" not in response.text


def test_a_form_sent_after_the_session_ended_gets_a_401_page(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    target = f"/review/screenings/{seeded.queue[0]}"
    with https_client(app) as client:
        sign_in(client, seeded.physician)
        detail = client.get(target)
        clock.at += sessions.IDLE_TIMEOUT + timedelta(seconds=1)
        form = {"csrf_token": csrf_of(detail.text), "etag": etag_of(detail.text),
                "disposition": "declined"}  # fmt: skip
        response = client.post(
            f"{target}/sign-off", data=form, headers={"Referer": f"https://testserver{target}"}
        )
    _assert_page(response, 401, "Your session has ended")
    assert "Nothing was saved" in response.text
    assert f'href="/sign-in?next={target}"' in response.text


def test_the_json_api_keeps_problem_json(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    with https_client(app) as client:
        sign_in(client, seeded.physician)
        unknown = client.get(f"/v1/screenings/{uuid.uuid4()}/reviews")
        invalid = client.get("/v1/screenings/not-a-uuid/reviews")
    for response, status in ((unknown, 404), (invalid, 422)):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
