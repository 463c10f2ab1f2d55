"""Browser sessions: sign in, resume (idle and absolute limits), end; CSRF; password change.

The cookie holds a 256-bit random token; the table holds only its sha256, so a database
read does not yield a usable session. Each session has its own CSRF token for form POSTs.
Functions take the caller's session and never commit.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy.orm import Session

from app.account import lifecycle as account_lifecycle
from app.account import password as passwords
from app.account import service as account_service
from app.account.service import Principal, principal_of
from app.audit import service as audit_service
from app.crypto import KeyRing
from app.db.models import UserAccount, WebSession
from app.errors import ProblemItem, ValidationFailed

IDLE_TIMEOUT = timedelta(minutes=15)
ABSOLUTE_TIMEOUT = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class WebUser:
    """A principal signed in through a browser session, with the session's CSRF token.

    ``must_change_password``: signed in with a one-time password; until it is changed, only
    the change-password page and sign-out are open to this session.
    """

    principal: Principal
    csrf_token: str
    token_hash: str
    must_change_password: bool = False


@dataclass(frozen=True, slots=True)
class PasswordChange:
    """A change-password form: the current password, the new one and its confirmation."""

    current: str
    new: str
    confirm: str


@dataclass(frozen=True, slots=True)
class WebSignIn:
    """A browser sign-in: the new session's cookie token, or a message safe to show anyone."""

    token: str | None
    message: str = ""
    is_locked: bool = False
    must_change_password: bool = False


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, *, principal: Principal, now: datetime) -> str:
    """Open a session for a user who just signed in; return the cookie token (new each time)."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=_hash(token),
            user_id=principal.user_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    return token


def resume(session: Session, *, token: str, now: datetime) -> WebUser | None:
    """The signed-in user of a cookie token, refreshing its idle timer; None if not valid.

    A session ends after ``IDLE_TIMEOUT`` without a request or ``ABSOLUTE_TIMEOUT`` after
    sign-in, whichever comes first; an ended session never comes back.
    """
    if not token or len(token) > 100:
        return None
    row = session.get(WebSession, _hash(token))
    if row is None or row.ended_at is not None:
        return None
    if now - row.last_seen_at > IDLE_TIMEOUT or now - row.created_at > ABSOLUTE_TIMEOUT:
        row.ended_at = now
        return None
    user = session.get(UserAccount, row.user_id)
    if user is None or user.disabled_at is not None:
        row.ended_at = now
        return None
    row.last_seen_at = now
    return WebUser(principal_of(user), row.csrf_token, row.token_hash, user.must_change_password)


def sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    totp_code: str,
    keyring: KeyRing,
    now: datetime,
    request_id: str | None = None,
) -> WebSignIn:
    """Check the credentials (``account_service.sign_in``); on success open a new session."""
    result = account_service.sign_in(
        session,
        email=email,
        password=password,
        totp_code=totp_code,
        keyring=keyring,
        now=now,
        request_id=request_id,
    )
    if result.principal is None:
        return WebSignIn(None, result.message, result.message == account_service.LOCKED)
    token = start(session, principal=result.principal, now=now)
    return WebSignIn(token, must_change_password=result.must_change_password)


def end(session: Session, *, web_user: WebUser, now: datetime, request_id: str | None) -> None:
    """Sign out: end the session server-side (a replayed cookie is then worthless)."""
    row = session.get_one(WebSession, web_user.token_hash)
    row.ended_at = now
    audit_service.append(
        session,
        action="user.signed_out",
        actor=web_user.principal.actor,
        clinic_id=web_user.principal.clinic_id,
        target_type="user",
        target_id=web_user.principal.user_id,
        request_id=request_id,
    )


def change_password(
    session: Session,
    *,
    web_user: WebUser,
    change: PasswordChange,
    now: datetime,
    request_id: str | None = None,
) -> None:
    """Replace the signed-in user's password (argon2id); end their other sessions; audit it.

    The new password must have ``MIN_LENGTH`` characters, differ from the current one and
    match its confirmation; the current one must be right. Raises ValidationFailed listing
    every problem (nothing is changed). Clears ``must_change_password``; this session stays
    signed in, any other (a stolen cookie, a forgotten browser) ends, and every personal token
    of the user is revoked.

    A wrong current password counts as a failed sign-in (``account_service``): after
    ``MAX_FAILURES`` the email is locked out, and a locked-out user's change (even with the
    right password) ends this session and raises LockedOut. The caller commits either way.
    """
    user = session.get_one(UserAccount, web_user.principal.user_id)
    if account_service.is_locked(session, email=user.email, now=now):
        _lock_out(session, web_user, now, request_id)
    problems = _password_change_problems(user, change)
    is_wrong = any(problem.code == "wrong_password" for problem in problems)
    if is_wrong and account_service.note_wrong_current_password(
        session, user=user, now=now, request_id=request_id
    ):
        _lock_out(session, web_user, now, request_id)
    if problems:
        raise ValidationFailed("The password was not changed.", errors=problems)
    user.password_hash = passwords.hash_password(change.new)
    user.must_change_password = False
    # Whoever knew the old password may hold a session or a token: both end (issue 15).
    account_lifecycle.end_credentials(
        session,
        user=user,
        actor=web_user.principal.actor,
        now=now,
        reason="password_changed",
        keep_token_hash=web_user.token_hash,
    )
    audit_service.append(
        session,
        action="user.password_changed",
        actor=web_user.principal.actor,
        clinic_id=user.clinic_id,
        target_type="user",
        target_id=user.id,
        request_id=request_id,
    )


class LockedOut(Exception):
    """Too many wrong passwords: the email is locked out and this session has ended."""


def _lock_out(
    session: Session, web_user: WebUser, now: datetime, request_id: str | None
) -> NoReturn:
    end(session, web_user=web_user, now=now, request_id=request_id)
    raise LockedOut(account_service.LOCKED)


def _password_change_problems(user: UserAccount, change: PasswordChange) -> list[ProblemItem]:
    problems = []
    if not passwords.verify_password(user.password_hash, change.current):
        problems.append(
            ProblemItem(
                "wrong_password", "Your current password is not correct.", pointer="#/current"
            )
        )
    if len(change.new) < passwords.MIN_LENGTH:
        problems.append(
            ProblemItem(
                "password_too_short",
                f"Choose a new password with at least {passwords.MIN_LENGTH} characters.",
                pointer="#/new",
            )
        )
    elif passwords.verify_password(user.password_hash, change.new):
        problems.append(
            ProblemItem(
                "password_unchanged",
                "Choose a new password that is different from your current one.",
                pointer="#/new",
            )
        )
    if change.confirm != change.new:
        problems.append(
            ProblemItem(
                "password_mismatch",
                "Type the same new password in both boxes.",
                pointer="#/confirm",
            )
        )
    return problems


def is_valid_csrf(web_user: WebUser, given: str | None) -> bool:
    """Whether a form's CSRF token is this session's (constant-time comparison)."""
    return given is not None and hmac.compare_digest(web_user.csrf_token, given)
