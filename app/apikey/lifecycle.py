"""Credential lifecycle: list, revoke and rotate clinic API keys and users' personal tokens.

Contracts: functions take the caller's session and never commit; every change is an audit
event in the same transaction (key ids and times, never a key or its hash). A listing never
contains a key or its hash either. Bad input raises NotFound or ValidationFailed and changes
nothing.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.db.models import ApiKey
from app.errors import NotFound, ValidationFailed


@dataclass(frozen=True, slots=True)
class KeyView:
    """What an operator may see of a key: everything but the key and its hash."""

    id: uuid.UUID
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """The JSON form of ``--json`` listings (UTC ISO-8601 times)."""
        return {
            "id": str(self.id),
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": apikey_service.iso(self.created_at),
            "last_used_at": apikey_service.iso(self.last_used_at),
            "expires_at": apikey_service.iso(self.expires_at),
            "revoked_at": apikey_service.iso(self.revoked_at),
            "state": self.state(now),
        }


@dataclass(frozen=True, slots=True)
class Rotated:
    """A rotation: the new key (plaintext shown once) and when the old one stops working."""

    created: apikey_service.CreatedKey
    old_key_id: uuid.UUID
    old_stops_at: datetime


def view_of(row: ApiKey) -> KeyView:
    """The operator's view of a key row."""
    return KeyView(
        row.id,
        row.name,
        tuple(row.scopes),
        row.created_at,
        row.last_used_at,
        row.expires_at,
        row.revoked_at,
    )


def list_clinic_keys(session: Session, *, clinic_name: str) -> list[KeyView]:
    """The clinic's intake keys (not personal tokens), oldest first; NotFound for no clinic."""
    clinic = apikey_service.find_clinic(session, name=clinic_name)
    if clinic is None:
        raise NotFound(apikey_service.unknown_clinic_message(session, clinic_name))
    rows = session.scalars(
        select(ApiKey)
        .where(ApiKey.clinic_id == clinic.id, ApiKey.user_id.is_(None))
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return [view_of(row) for row in rows]


def list_user_tokens(session: Session, *, user_id: uuid.UUID) -> list[KeyView]:
    """A user's personal tokens, oldest first."""
    rows = session.scalars(
        select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at, ApiKey.id)
    )
    return [view_of(row) for row in rows]


def _key(session: Session, key_id: uuid.UUID, *, user_id: uuid.UUID | None) -> ApiKey:
    """The intake key ``key_id`` (``user_id`` None) or that user's token; NotFound otherwise."""
    row = session.get(ApiKey, key_id, with_for_update=True)
    if row is not None and row.user_id == user_id:
        return row
    if user_id is not None:
        raise NotFound(f"This user has no personal token with id {key_id}.")
    is_token = row is not None and row.user_id is not None
    hint = " (it is a personal token: use `screening user token revoke`)" if is_token else ""
    raise NotFound(f"There is no clinic API key with id {key_id}{hint}.")


def revoke(
    session: Session,
    *,
    key_id: uuid.UUID,
    actor: audit_service.Actor,
    now: datetime,
    user_id: uuid.UUID | None = None,
    reason: str = "revoked",
) -> KeyView:
    """Revoke an intake key (or, with ``user_id``, that user's personal token) at ``now``.

    Raises NotFound for no such key and ValidationFailed for one already revoked.
    """
    row = _key(session, key_id, user_id=user_id)
    if row.revoked_at is not None:
        raise ValidationFailed(
            f"The key {key_id} was already revoked at {apikey_service.iso(row.revoked_at)}."
        )
    _revoke_row(session, row, actor=actor, now=now, reason=reason)
    return view_of(row)


def _revoke_row(
    session: Session, row: ApiKey, *, actor: audit_service.Actor, now: datetime, reason: str
) -> None:
    row.revoked_at = now
    audit_service.append(
        session,
        action="apikey.revoked",
        actor=actor,
        clinic_id=row.clinic_id,
        target_type="api_key",
        target_id=str(row.id),
        detail={"reason": reason, "user_id": None if row.user_id is None else str(row.user_id)},
    )


def revoke_user_tokens(
    session: Session, *, user_id: uuid.UUID, actor: audit_service.Actor, now: datetime, reason: str
) -> int:
    """Revoke every live personal token of a user (password change, disable); their count."""
    rows = session.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .with_for_update()
    ).all()
    for row in rows:
        _revoke_row(session, row, actor=actor, now=now, reason=reason)
    return len(rows)


def rotate(
    session: Session,
    *,
    key_id: uuid.UUID,
    grace: timedelta,
    expires_at: datetime | None,
    actor: audit_service.Actor,
    now: datetime,
) -> Rotated:
    """Give an intake key a successor with the same clinic, name and scopes.

    The old key keeps working until ``now + grace`` (or its own earlier expiry) and then
    stops. Raises NotFound for no such key, ValidationFailed for a revoked or expired one or
    a negative grace.
    """
    if grace < timedelta(0):
        raise ValidationFailed("--grace must not be negative.")
    row = _key(session, key_id, user_id=None)
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise ValidationFailed(f"The key {key_id} is revoked or expired: create a new one.")
    stops_at = now + grace
    if row.expires_at is None or stops_at < row.expires_at:
        row.expires_at = stops_at
    key, new = apikey_service.mint(
        session,
        clinic_id=row.clinic_id,
        name=row.name,
        scopes=list(row.scopes),
        now=now,
        expires_at=expires_at,
    )
    audit_service.append(
        session,
        action="apikey.rotated",
        actor=actor,
        clinic_id=row.clinic_id,
        target_type="api_key",
        target_id=str(row.id),
        detail={
            "new_key_id": str(new.id),
            "old_stops_at": apikey_service.iso(row.expires_at),
            "expires_at": apikey_service.iso(expires_at),
            "scopes": new.scopes,
        },
    )
    created = apikey_service.CreatedKey(key, new.id, row.clinic_id, False)
    return Rotated(created, row.id, row.expires_at)
