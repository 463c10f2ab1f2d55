"""Sign-in, sessions (cookie flags, idle and absolute limits), sign-out, CSRF, lockout, TOTP."""

import logging
from datetime import timedelta

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.account import service as account_service
from app.audit import service as audit_service
from app.db.models import AuditEvent, UserAccount, WebSession
from app.engine import Ruleset
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import KEYRING, FixedClock
from tests.review.seed import PASSWORD, csrf_of, https_client, seed_queue, sign_in


def _signed_in(app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock):  # type: ignore[no-untyped-def]
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    client = https_client(app)
    response = sign_in(client, seeded.physician)
    assert response.status_code == 303, response.text
    return client, seeded


class TestCookie:
    def test_sign_in_sets_a_host_only_secure_http_only_lax_cookie(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        with https_client(app) as client:
            response = sign_in(client, seeded.physician)
        assert response.status_code == 303
        assert response.headers["location"] == "/review"
        cookie = response.headers["set-cookie"]
        name, token = cookie.split(";")[0].split("=", 1)
        assert name == "__Host-session"
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags
        assert not any(f.startswith(("max-age", "expires", "domain")) for f in flags)
        assert len(token) >= 43  # 256 bits, URL-safe base64
        stored = session.scalars(select(WebSession.token_hash)).all()
        assert token not in stored
        assert len(stored) == 1

    def test_plain_http_on_loopback_drops_secure_for_development(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        with https_client(app, "http://127.0.0.1") as client:
            cookie = sign_in(client, seeded.physician).headers["set-cookie"]
            assert cookie.startswith("session=")
            assert "secure" not in cookie.lower()
            assert client.get("/review").status_code == 200

    def test_each_sign_in_gets_a_new_session_id(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        with https_client(app) as client:
            first = sign_in(client, seeded.physician).cookies["__Host-session"]
            second = sign_in(client, seeded.physician).cookies["__Host-session"]
        assert first != second


class TestTimeouts:
    def test_idle_for_15_minutes_ends_the_session(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        client, _ = _signed_in(app, session, ruleset, clock)
        with client:
            clock.at += timedelta(minutes=15, seconds=1)
            response = client.get("/review")
            assert response.status_code == 303
            assert response.headers["location"] == "/sign-in?next=%2Freview&expired=true"
            page = client.get(response.headers["location"])
            assert "Your session has ended" in page.text
            clock.at += timedelta(seconds=1)
            assert client.get("/review").status_code == 303  # ended for good

    def test_activity_keeps_the_session_alive_until_12_hours(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        client, _ = _signed_in(app, session, ruleset, clock)
        start = clock.at
        with client:
            while clock.at + timedelta(minutes=14) < start + timedelta(hours=12):
                clock.at += timedelta(minutes=14)
                assert client.get("/review").status_code == 200, clock.at - start
            clock.at = start + timedelta(hours=12, seconds=1)
            assert client.get("/review").status_code == 303


class TestSignOut:
    def test_sign_out_ends_the_session_on_the_server(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        client, _ = _signed_in(app, session, ruleset, clock)
        with client:
            token = client.cookies["__Host-session"]
            csrf = csrf_of(client.get("/review").text)
            response = client.post("/sign-out", data={"csrf_token": csrf})
            assert response.status_code == 303
            assert response.headers["location"] == "/sign-in?signed_out=true"
            client.cookies.set("__Host-session", token)  # replay the old cookie
            assert client.get("/review").status_code == 303

    @pytest.mark.parametrize(
        ("csrf", "headers"),
        [
            ("", {}),
            ("not-the-token", {}),
            (None, {"Origin": "https://evil.example"}),
            (None, {"Sec-Fetch-Site": "cross-site"}),
        ],
        ids=["missing-token", "wrong-token", "foreign-origin", "cross-site-fetch"],
    )
    def test_forged_sign_out_is_refused(
        self,
        app: FastAPI,
        session: Session,
        ruleset: Ruleset,
        clock: FixedClock,
        csrf: str | None,
        headers: dict[str, str],
    ) -> None:
        client, _ = _signed_in(app, session, ruleset, clock)
        with client:
            token = csrf if csrf is not None else csrf_of(client.get("/review").text)
            response = client.post("/sign-out", data={"csrf_token": token}, headers=headers)
            assert response.status_code == 403
            assert "This form has expired" in response.text
            assert client.get("/review").status_code == 200  # still signed in


class TestLockout:
    def test_five_failures_delay_the_email_even_for_the_right_password(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        with https_client(app) as client:
            statuses = [sign_in(client, seeded.physician, "wrong").status_code for _ in range(5)]
            assert statuses == [400, 400, 400, 400, 429]
            locked = sign_in(client, seeded.physician)
            assert locked.status_code == 429
            assert account_service.LOCKED in locked.text
            clock.at += timedelta(seconds=1)  # the fifth failure's delay: one second
            assert sign_in(client, seeded.physician).status_code == 303

    def test_unknown_and_known_emails_get_the_same_answers(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        with https_client(app) as client:
            known = [sign_in(client, seeded.physician, "wrong") for _ in range(6)]
            # from another address: the source's own back-off is not what is compared here
            other = TestClient(
                app, base_url="https://testserver", follow_redirects=False, client=("10.0.0.9", 1)
            )
            unknown = [sign_in(other, "nobody@example.org", "wrong") for _ in range(6)]
        for mine, theirs in zip(known, unknown, strict=True):
            assert mine.status_code == theirs.status_code
            assert mine.text.replace(seeded.physician, "E") == theirs.text.replace(
                "nobody@example.org", "E"
            )
        failures = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.sign_in_failed")
        ).all()
        assert len(failures) == 12

    def test_disabled_account_cannot_sign_in(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        user = session.scalars(
            select(UserAccount).where(UserAccount.email == seeded.physician)
        ).one()
        user.disabled_at = clock.now()
        session.flush()
        with https_client(app) as client:
            response = sign_in(client, seeded.physician)
        assert response.status_code == 400
        assert account_service.BAD_CREDENTIALS in response.text


class TestTotp:
    def test_a_clinic_that_requires_totp_needs_the_current_code(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now(), clinic="TOTP clinic")
        cli = audit_service.Actor.cli()
        account_service.require_totp(
            session, clinic_name="TOTP clinic", is_required=True, actor=cli
        )
        uri = account_service.enroll_totp(
            session, email=seeded.physician, keyring=KEYRING, actor=cli
        )
        totp = pyotp.parse_uri(uri)
        assert isinstance(totp, pyotp.TOTP)
        with https_client(app) as client:
            assert sign_in(client, seeded.physician).status_code == 400
            assert sign_in(client, seeded.physician, code="000000").status_code == 400
            code = totp.at(clock.now())
            assert sign_in(client, seeded.physician, code=code).status_code == 303
            # Without a secret, a user of that clinic cannot sign in with a password alone.
            assert sign_in(client, seeded.colleague).status_code == 400


class TestPasswords:
    def test_passwords_are_stored_with_argon2id_at_the_owasp_floor(
        self, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        user = session.scalars(
            select(UserAccount).where(UserAccount.email == seeded.physician)
        ).one()
        assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert PASSWORD not in user.password_hash

    def test_passwords_and_session_tokens_never_reach_the_logs(
        self,
        app: FastAPI,
        session: Session,
        ruleset: Ruleset,
        clock: FixedClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        with https_client(app) as client:
            sign_in(client, seeded.physician, "a-wrong-password-123")
            token = sign_in(client, seeded.physician).cookies["__Host-session"]
            csrf = csrf_of(client.get("/review").text)
            client.post("/sign-out", data={"csrf_token": csrf})
        for secret in (PASSWORD, "a-wrong-password-123", token, csrf):
            assert secret not in caplog.text


class TestPages:
    def test_review_pages_redirect_to_sign_in_and_back(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        target = f"/review/screenings/{seeded.queue[0]}"
        with https_client(app) as client:
            response = client.get(target)
            assert response.status_code == 303
            page = client.get(response.headers["location"])
            assert f'name="next" value="{target}"' in page.text
            signed_in = client.post(
                "/sign-in", data={"email": seeded.physician, "password": PASSWORD, "next": target}
            )
            assert signed_in.headers["location"] == target

    @pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil"])
    def test_next_never_leaves_the_site(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock, target: str
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        with https_client(app) as client:
            response = client.post(
                "/sign-in", data={"email": seeded.physician, "password": PASSWORD, "next": target}
            )
        assert response.headers["location"] == "/review"

    def test_sign_in_page_sends_the_security_headers(self, app: FastAPI) -> None:
        with https_client(app) as client:
            response = client.get("/sign-in")
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "script-src" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"

    def test_cross_site_sign_in_is_refused(
        self, app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
    ) -> None:
        seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
        with https_client(app) as client:
            response = client.post(
                "/sign-in",
                data={"email": seeded.physician, "password": PASSWORD},
                headers={"Origin": "https://evil.example"},
            )
        assert response.status_code == 403
        assert "set-cookie" not in response.headers


def test_behind_a_proxy_the_origin_is_the_public_url_not_the_host_header(
    database_url: str,
    session_factory: sessionmaker[Session],
    session: Session,
    ruleset: Ruleset,
    clock: FixedClock,
) -> None:
    settings = make_settings(database_url, public_base_url="https://clinic.example")
    app = create_app(settings, sessionmaker=session_factory, clock=clock, ruleset=ruleset)
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    body = {"email": seeded.physician, "password": PASSWORD, "code": "", "next": "/review"}
    with https_client(app, base_url="https://upstream:8000") as client:  # the proxy's Host
        forged = client.post("/sign-in", data=body, headers={"Origin": "https://upstream:8000"})
        plain = client.post("/sign-in", data=body, headers={"Origin": "http://clinic.example"})
        ours = client.post("/sign-in", data=body, headers={"Origin": "https://clinic.example"})
    assert (forged.status_code, plain.status_code, ours.status_code) == (403, 403, 303)
