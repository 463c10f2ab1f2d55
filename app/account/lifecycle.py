"""A user's credentials over time: disable and enable, end every session and personal token.

Contracts: functions take the caller's session and never commit; every change is an audit
event. Disabling a user, or changing their password, ends all their web sessions and revokes
all their personal tokens in the same transaction (a stolen laptop stops working at once).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.account import service as account_service
from app.apikey import lifecycle as key_lifecycle
from app.audit import service as audit_service
from app.db.models import UserAccount, WebSession
from app.errors import NotFound, ValidationFailed

PERSONAL_TOKEN_LIFETIME = timedelta(days=90)
"""A personal token's default lifetime (clinic intake keys never expire by default)."""


@dataclass(frozen=True, slots=True)
class Ended:
    """What ending a user's credentials ended: web sessions and personal tokens."""

    sessions: int
    tokens: int


def find_user(session: Session, *, email: str) -> UserAccount:
    """The user with this email address (any case); NotFound otherwise."""
    email = account_service.normalize_email(email)
    user = session.scalars(select(UserAccount).where(UserAccount.email == email)).one_or_none()
    if user is None:
        raise NotFound(f"There is no user with the email address {email}.")
    return user


def end_sessions(
    session: Session, *, user_id: uuid.UUID, now: datetime, keep_token_hash: str | None = None
) -> int:
    """End the user's open web sessions (except ``keep_token_hash``); their count."""
    query = select(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
    if keep_token_hash is not None:
        query = query.where(WebSession.token_hash != keep_token_hash)
    rows = session.scalars(query).all()
    for row in rows:
        row.ended_at = now
    return len(rows)


def end_credentials(
    session: Session,
    *,
    user: UserAccount,
    actor: audit_service.Actor,
    now: datetime,
    reason: str,
    keep_token_hash: str | None = None,
) -> Ended:
    """End every web session (but ``keep_token_hash``) and revoke every personal token."""
    ended = end_sessions(session, user_id=user.id, now=now, keep_token_hash=keep_token_hash)
    tokens = key_lifecycle.revoke_user_tokens(
        session, user_id=user.id, actor=actor, now=now, reason=reason
    )
    return Ended(ended, tokens)


def disable(session: Session, *, email: str, actor: audit_service.Actor, now: datetime) -> Ended:
    """Disable a user: no sign-in, sessions ended, personal tokens revoked; audited.

    Raises NotFound for an unknown email and ValidationFailed for a user already disabled.
    """
    user = find_user(session, email=email)
    if user.disabled_at is not None:
        raise ValidationFailed(f"{user.email} is already disabled.")
    user.disabled_at = now
    ended = end_credentials(session, user=user, actor=actor, now=now, reason="user_disabled")
    audit_service.append(
        session,
        action="user.disabled",
        actor=actor,
        clinic_id=user.clinic_id,
        target_type="user",
        target_id=user.id,
        detail={"sessions_ended": ended.sessions, "tokens_revoked": ended.tokens},
    )
    return ended


def enable(session: Session, *, email: str, actor: audit_service.Actor) -> None:
    """Let a disabled user sign in again (their old sessions and tokens stay ended); audited.

    Raises NotFound for an unknown email and ValidationFailed for a user who is not disabled.
    """
    user = find_user(session, email=email)
    if user.disabled_at is None:
        raise ValidationFailed(f"{user.email} is not disabled.")
    user.disabled_at = None
    audit_service.append(
        session,
        action="user.enabled",
        actor=actor,
        clinic_id=user.clinic_id,
        target_type="user",
        target_id=user.id,
    )


def user_tokens(session: Session, *, email: str) -> list[key_lifecycle.KeyView]:
    """The user's personal tokens, oldest first; NotFound for an unknown email."""
    return key_lifecycle.list_user_tokens(session, user_id=find_user(session, email=email).id)


def revoke_token(
    session: Session,
    *,
    email: str,
    token_id: uuid.UUID,
    actor: audit_service.Actor,
    now: datetime,
) -> key_lifecycle.KeyView:
    """Revoke one personal token of the user (their other tokens and sessions stay)."""
    user = find_user(session, email=email)
    return key_lifecycle.revoke(session, key_id=token_id, user_id=user.id, actor=actor, now=now)
