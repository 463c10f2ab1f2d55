"""Server-side browser sessions: start, resume (idle and absolute limits), end; CSRF tokens.

The cookie holds a 256-bit random token; the table holds only its sha256, so a database
read does not yield a usable session. Each session has its own CSRF token for form POSTs.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.account import service as account_service
from app.account.service import Principal, principal_of
from app.audit import service as audit_service
from app.crypto import KeyRing
from app.db.models import UserAccount, WebSession

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


def change_password(
    session: Session,
    *,
    web_user: WebUser,
    change: account_service.PasswordChange,
    now: datetime,
    request_id: str | None = None,
) -> None:
    """Change the signed-in user's password, keeping this session and ending the others.

    Raises ValidationFailed (see ``account_service.change_password``).
    """
    account_service.change_password(
        session,
        user_id=web_user.principal.user_id,
        change=change,
        keep_session=web_user.token_hash,
        now=now,
        request_id=request_id,
    )


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


def is_valid_csrf(web_user: WebUser, given: str | None) -> bool:
    """Whether a form's CSRF token is this session's (constant-time comparison)."""
    return given is not None and hmac.compare_digest(web_user.csrf_token, given)
