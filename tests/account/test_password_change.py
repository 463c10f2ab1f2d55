"""A one-time password must be replaced before anything else; the change-password form."""

from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.account import service as account_service
from app.audit import service as audit_service
from app.db.models import AuditEvent, Role, UserAccount, WebSession
from app.engine import Ruleset
from tests.factories import FixedClock
from tests.review.seed import csrf_of, https_client, seed_queue, sign_in

NEW = "a long and private sentence"
CHANGE_PAGE = "/account/password?next=%2Freview"


@dataclass(frozen=True)
class Newcomer:
    email: str
    one_time_password: str


def _newcomer(session: Session, ruleset: Ruleset, clock: FixedClock) -> Newcomer:
    seed_queue(session, ruleset=ruleset, now=clock.now(), clinic="Change clinic")
    created = account_service.create_user(
        session,
        clinic_name="Change clinic",
        email="newcomer@example.org",
        role=Role.physician,
        actor=audit_service.Actor.cli(),
        now=clock.now(),
    )
    assert created.password is not None
    return Newcomer("newcomer@example.org", created.password)


def _change(client: TestClient, current: str, new: str, confirm: str | None = None) -> str:
    csrf = csrf_of(client.get("/account/password").text)
    response = client.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": current, "new_password": new,
              "confirm_password": new if confirm is None else confirm, "next": "/review"},
    )  # fmt: skip
    return f"{response.status_code} {response.headers.get('location', '')}{response.text}"


def _user(session: Session, email: str) -> UserAccount:
    """The user as stored now (re-read: the app's requests committed in between)."""
    query = select(UserAccount).where(UserAccount.email == email)
    return session.scalars(query.execution_options(populate_existing=True)).one()


class TestForcedChange:
    def test_sign_in_with_a_one_time_password_leads_to_the_change_page(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        newcomer = _newcomer(session, ruleset, clock)
        assert _user(session, newcomer.email).must_change_password
        with https_client(app) as client:
            response = sign_in(client, newcomer.email, newcomer.one_time_password)
            assert response.status_code == 303
            assert response.headers["location"] == CHANGE_PAGE
            page = client.get(CHANGE_PAGE)
            assert page.status_code == 200
            assert "Choose your own password to continue" in page.text
            assert 'autocomplete="new-password"' in page.text

    @pytest.mark.parametrize("path", ["/review", "/review?status=all", "/review/screenings/x"])
    def test_the_queue_stays_closed_until_the_password_is_changed(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock, path: str
    ) -> None:
        newcomer = _newcomer(session, ruleset, clock)
        with https_client(app) as client:
            sign_in(client, newcomer.email, newcomer.one_time_password)
            response = client.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/account/password?next=%2Freview")

    def test_the_review_api_refuses_the_session_until_then(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        newcomer = _newcomer(session, ruleset, clock)
        screening = seed_queue(session, ruleset=ruleset, now=clock.now(), clinic="Change clinic")
        with https_client(app) as client:
            sign_in(client, newcomer.email, newcomer.one_time_password)
            response = client.get(f"/v1/screenings/{screening.queue[0]}/reviews")
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"

    def test_a_good_change_opens_the_queue_and_stores_argon2id(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        newcomer = _newcomer(session, ruleset, clock)
        with https_client(app) as other, https_client(app) as client:
            sign_in(other, newcomer.email, newcomer.one_time_password)
            sign_in(client, newcomer.email, newcomer.one_time_password)
            assert _change(client, newcomer.one_time_password, NEW).startswith("303 /review")
            assert client.get("/review").status_code == 200
            user = _user(session, newcomer.email)
            assert not user.must_change_password
            assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
            # The change ends every other session of the user; this one stays signed in.
            assert other.get("/review").status_code == 303
            live = session.scalars(
                select(WebSession).where(
                    WebSession.user_id == user.id, WebSession.ended_at.is_(None)
                )
            ).all()
            assert len(live) == 1
        with https_client(app) as client:
            assert sign_in(client, newcomer.email, newcomer.one_time_password).status_code == 400
            assert sign_in(client, newcomer.email, NEW).headers["location"] == "/review"
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.password_changed")
        ).all()
        assert [event.target_id for event in events] == [str(user.id)]


class TestForm:
    @pytest.mark.parametrize(
        ("current", "new", "confirm", "message"),
        [
            ("wrong one-time password", NEW, NEW, "Your current password is not correct."),
            (None, "eleven char", "eleven char", "at least 12 characters"),
            (None, None, None, "different from your current one"),
            (None, NEW, NEW + "!", "Type the same new password in both boxes."),
        ],
        ids=["wrong-current", "too-short", "same-as-old", "confirm-differs"],
    )
    def test_each_problem_is_shown_and_nothing_changes(
        self,
        app: FastAPI,
        session: Session,
        ruleset: Ruleset,
        clock: FixedClock,
        current: str | None,
        new: str | None,
        confirm: str | None,
        message: str,
    ) -> None:
        newcomer = _newcomer(session, ruleset, clock)
        old_hash = _user(session, newcomer.email).password_hash
        otp = newcomer.one_time_password
        with https_client(app) as client:
            sign_in(client, newcomer.email, otp)
            result = _change(client, current or otp, new or otp, confirm or new or otp)
            assert result.startswith("422 ")
            assert message in result
            assert "Error: Change your password" in result
            assert otp not in result  # passwords are never echoed
            assert NEW not in result
            assert client.get("/review").status_code == 303
        user = _user(session, newcomer.email)
        assert user.password_hash == old_hash
        assert user.must_change_password

    @pytest.mark.parametrize(
        ("csrf", "headers"),
        [("", {}), ("forged", {}), (None, {"Origin": "https://evil.example"})],
        ids=["missing-token", "wrong-token", "foreign-origin"],
    )
    def test_a_forged_change_is_refused(
        self,
        app: FastAPI,
        session: Session,
        ruleset: Ruleset,
        clock: FixedClock,
        csrf: str | None,
        headers: dict[str, str],
    ) -> None:
        newcomer = _newcomer(session, ruleset, clock)
        with https_client(app) as client:
            sign_in(client, newcomer.email, newcomer.one_time_password)
            token = csrf if csrf is not None else csrf_of(client.get("/account/password").text)
            response = client.post(
                "/account/password",
                data={"csrf_token": token, "current_password": newcomer.one_time_password,
                      "new_password": NEW, "confirm_password": NEW},
                headers=headers,
            )  # fmt: skip
            assert response.status_code == 403
            assert "This form has expired" in response.text
        assert _user(session, newcomer.email).must_change_password

    def test_a_user_with_their_own_password_may_change_it_too(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        with https_client(app) as client:
            assert sign_in(client, seeded.physician).headers["location"] == "/review"
            page = client.get("/account/password")
            assert "Current password" in page.text
            assert "one-time password" not in page.text

    def test_the_page_needs_a_session(self, app: FastAPI) -> None:
        with https_client(app) as client:
            response = client.get("/account/password")
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in?next=%2Faccount%2Fpassword"


class TestGuessing:
    """A signed-in browser is no place to try passwords: the sign-in lockout applies."""

    def test_wrong_current_passwords_lock_the_account_and_end_the_session(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        newcomer = _newcomer(session, ruleset, clock)
        old_hash = _user(session, newcomer.email).password_hash
        with https_client(app) as client:
            sign_in(client, newcomer.email, newcomer.one_time_password)
            for _ in range(account_service.MAX_FAILURES - 1):
                assert _change(client, "a wrong guess", NEW).startswith("422")
            last = _change(client, "a wrong guess", NEW)
            assert last.startswith("429")
            assert account_service.LOCKED.split(".")[0] in last
            assert client.get("/review").status_code == 303  # signed out
        user = _user(session, newcomer.email)
        assert (user.password_hash, user.must_change_password) == (old_hash, True)  # unchanged
        with https_client(app) as client:  # locked: even the right password is refused now
            assert sign_in(client, newcomer.email, newcomer.one_time_password).status_code == 429
        failures = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.sign_in_failed")
        ).all()
        reasons = [(event.detail or {}).get("reason") for event in failures]
        assert reasons[: account_service.MAX_FAILURES] == [
            *["wrong_current_password"] * (account_service.MAX_FAILURES - 1),
            "locked_out",
        ]
        assert {event.target_id for event in failures[: account_service.MAX_FAILURES]} == {
            str(user.id)
        }

    def test_a_locked_account_cannot_change_its_password_even_with_the_right_one(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        newcomer = _newcomer(session, ruleset, clock)
        old_hash = _user(session, newcomer.email).password_hash
        with https_client(app) as client:
            sign_in(client, newcomer.email, newcomer.one_time_password)
            with https_client(app) as guesser:  # another browser guesses until the lockout
                for _ in range(account_service.MAX_FAILURES):
                    sign_in(guesser, newcomer.email, "a wrong guess")
            assert _change(client, newcomer.one_time_password, NEW).startswith("429")
            assert client.get("/review").status_code == 303
        assert _user(session, newcomer.email).password_hash == old_hash  # not changed
        user = _user(session, newcomer.email)
        assert (user.password_hash, user.must_change_password) == (old_hash, True)  # unchanged

    def test_a_right_password_after_a_wrong_one_still_works_below_the_limit(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        newcomer = _newcomer(session, ruleset, clock)
        with https_client(app) as client:
            sign_in(client, newcomer.email, newcomer.one_time_password)
            assert _change(client, "a typo", NEW).startswith("422")
            assert _change(client, newcomer.one_time_password, NEW).startswith("303 /review")
