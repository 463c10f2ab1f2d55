"""TOTP codes: one step of clock drift, and no code accepted twice (replay within its window)."""

from datetime import timedelta

import pyotp
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.account import password as passwords
from app.account import service as account_service
from app.audit import service as audit_service
from app.db.models import UserAccount
from app.engine import Ruleset
from tests.factories import KEYRING, NOW, FixedClock
from tests.review.seed import https_client, seed_queue, sign_in

SECRET = pyotp.random_base32()
STEP = int(NOW.timestamp()) // 30


class TestAcceptedStep:
    def test_the_current_and_neighbouring_steps_are_accepted(self) -> None:
        totp = pyotp.TOTP(SECRET)
        for offset in (-1, 0, 1):
            code = totp.at(NOW + timedelta(seconds=30 * offset))
            step = passwords.accepted_totp_step(SECRET, code, now=NOW, after=None)
            assert step == STEP + offset
        code = totp.at(NOW + timedelta(seconds=60))
        assert passwords.accepted_totp_step(SECRET, code, now=NOW, after=None) is None

    def test_a_step_at_or_before_the_last_accepted_one_is_refused(self) -> None:
        code = pyotp.TOTP(SECRET).at(NOW)
        assert passwords.accepted_totp_step(SECRET, code, now=NOW, after=STEP - 1) == STEP
        assert passwords.accepted_totp_step(SECRET, code, now=NOW, after=STEP) is None
        assert passwords.accepted_totp_step(SECRET, code, now=NOW, after=STEP + 1) is None

    def test_malformed_codes_are_refused(self) -> None:
        for code in ("", "12345", "1234567", "abcdef", "12 34 5"):
            assert passwords.accepted_totp_step(SECRET, code, now=NOW, after=None) is None


def _enrolled(session: Session, ruleset: Ruleset, clock: FixedClock) -> tuple[str, pyotp.TOTP]:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now(), clinic="Replay clinic")
    cli = audit_service.Actor.cli()
    account_service.require_totp(session, clinic_name="Replay clinic", is_required=True, actor=cli)
    uri = account_service.enroll_totp(session, email=seeded.physician, keyring=KEYRING, actor=cli)
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    return seeded.physician, totp


def test_a_code_signs_in_once_and_is_refused_when_replayed(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    email, totp = _enrolled(session, ruleset, clock)
    code = totp.at(clock.now())
    with https_client(app) as client:
        assert sign_in(client, email, code=code).status_code == 303
        clock.at += timedelta(seconds=20)  # still inside the code's window
        replayed = sign_in(client, email, code=code)
        assert replayed.status_code == 400
        assert account_service.BAD_CREDENTIALS in replayed.text
        clock.at += timedelta(seconds=30)
        assert sign_in(client, email, code=totp.at(clock.now())).status_code == 303
    user = session.scalars(select(UserAccount).where(UserAccount.email == email)).one()
    session.refresh(user)
    assert user.totp_last_step == int(clock.now().timestamp()) // 30


def test_an_older_code_is_refused_after_a_newer_one(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    email, totp = _enrolled(session, ruleset, clock)
    with https_client(app) as client:
        newer = totp.at(clock.now() + timedelta(seconds=30))  # a phone a little ahead
        assert sign_in(client, email, code=newer).status_code == 303
        assert sign_in(client, email, code=totp.at(clock.now())).status_code == 400


def test_re_enrolling_forgets_the_last_step(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    email, totp = _enrolled(session, ruleset, clock)
    with https_client(app) as client:
        assert sign_in(client, email, code=totp.at(clock.now())).status_code == 303
    uri = account_service.enroll_totp(
        session, email=email, keyring=KEYRING, actor=audit_service.Actor.cli()
    )
    fresh = pyotp.parse_uri(uri)
    assert isinstance(fresh, pyotp.TOTP)
    with https_client(app) as client:
        assert sign_in(client, email, code=fresh.at(clock.now())).status_code == 303
