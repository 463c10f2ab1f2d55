"""Personal tokens: a user's own API token for the review API (issue 15), and who it acts as.

Contracts as app/account/service.py: functions take the caller's session and never commit.
"""

from datetime import datetime

from sqlalchemy.orm import Session

from app.account.service import Principal, normalize_email, principal_of, user_by_email
from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.db.models import UserAccount
from app.errors import Forbidden, NotFound

PERSONAL_TOKEN_SCOPES = (apikey_service.SCREENINGS_READ,)


def create_token(
    session: Session,
    *,
    email: str,
    actor: audit_service.Actor,
    now: datetime,
    expires_at: datetime | None = None,
) -> str:
    """Create a personal API token acting as this user; return the plaintext (shown once).

    Raises NotFound for an unknown or disabled user.
    """
    user = user_by_email(session, normalize_email(email))
    if user is None or user.disabled_at is not None:
        raise NotFound("No active user with this email address.")
    token, row = apikey_service.mint(
        session,
        clinic_id=user.clinic_id,
        name="personal token",
        scopes=list(PERSONAL_TOKEN_SCOPES),
        now=now,
        expires_at=expires_at,
        user_id=user.id,
    )
    audit_service.append(
        session,
        action="apikey.created",
        actor=actor,
        clinic_id=user.clinic_id,
        target_type="api_key",
        target_id=row.id,
        detail={
            "scopes": row.scopes,
            "user_id": str(user.id),
            "expires_at": apikey_service.iso(expires_at),
        },
    )
    return token


def token_principal(session: Session, *, token: str, now: datetime) -> Principal | None:
    """The user a personal token acts as; None if unknown, revoked, expired or disabled.

    Raises Forbidden for a clinic intake key (a key that belongs to no user).
    """
    row = apikey_service.live_key(session, key=token, now=now)
    if row is None:
        return None
    if row.user_id is None:
        raise Forbidden("Only a physician can do this: use a personal token or sign in.")
    return principal_of(session.get_one(UserAccount, row.user_id))
