"""Create (plaintext shown once), authenticate and look up API keys.

A key is ``sk_`` followed by 43 URL-safe characters (256 random bits). Only its sha256 is
stored: the key is high-entropy, so a slow password hash would add latency to every request
without adding safety.
"""

import difflib
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.db.models import ActorType, ApiKey, Clinic
from app.errors import ValidationFailed

KEY_PREFIX = "sk_"
SCREENINGS_READ = "screenings:read"
SCREENINGS_WRITE = "screenings:write"
INVITATIONS_WRITE = "invitations:write"
AUDIT_READ = "audit:read"
WEBHOOKS_WRITE = "webhooks:write"
SCOPES = (SCREENINGS_READ, SCREENINGS_WRITE, INVITATIONS_WRITE, AUDIT_READ, WEBHOOKS_WRITE)
# Everything intake software needs (DESIGN.md, `apikey create`); reading the clinic's audit
# trail is a compliance task, granted only on request (least privilege).
DEFAULT_SCOPES = (SCREENINGS_READ, SCREENINGS_WRITE, INVITATIONS_WRITE)


@dataclass(frozen=True, slots=True)
class Client:
    """An authenticated API caller: its key, its clinic and what it may do."""

    api_key_id: uuid.UUID
    clinic_id: uuid.UUID
    scopes: frozenset[str]

    @property
    def actor(self) -> audit_service.Actor:
        """The audit actor of this key."""
        return audit_service.Actor(ActorType.api_key, str(self.api_key_id))


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key; ``key`` is the only copy of the plaintext."""

    key: str
    api_key_id: uuid.UUID
    clinic_id: uuid.UUID
    is_new_clinic: bool


def hash_key(key: str) -> str:
    """Return the stored form of a key: its sha256 hex digest."""
    return hashlib.sha256(key.encode()).hexdigest()


def unknown_clinic_message(session: Session, name: str) -> str:
    """Why ``name`` is refused, naming the closest existing clinic (case and typos)."""
    names = list(session.scalars(select(Clinic.name).order_by(Clinic.name)))
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    hint = f' Did you mean "{lowered[close[0]]}"?' if close else ""
    return f'no clinic is named "{name}".{hint} To create it, add --create-clinic.'


def create(
    session: Session,
    *,
    clinic_name: str,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    name: str = "default",
    actor: audit_service.Actor,
    now: datetime,
    create_clinic: bool = True,
) -> CreatedKey:
    """Create a key for ``clinic_name``, creating the clinic if it does not exist.

    Writes the clinic (if new), the key and their audit events. Raises ValidationFailed on
    an unknown scope or an empty clinic name, and on an unknown clinic unless
    ``create_clinic`` (the message suggests the closest existing name: a typo must not make
    a second clinic whose screenings no physician sees).
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValidationFailed(f"unknown scope(s): {', '.join(unknown) or '(none given)'}")
    if not create_clinic and find_clinic(session, name=clinic_name) is None:
        raise ValidationFailed(unknown_clinic_message(session, clinic_name))
    clinic, is_new_clinic = get_or_create_clinic(session, name=clinic_name, actor=actor, now=now)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        id=uuid.uuid4(),
        clinic_id=clinic.id,
        name=name,
        key_hash=hash_key(key),
        scopes=list(dict.fromkeys(scopes)),
        created_at=now,
    )
    session.add(api_key)
    session.flush()
    audit_service.append(
        session,
        action="apikey.created",
        actor=actor,
        clinic_id=clinic.id,
        target_type="api_key",
        target_id=str(api_key.id),
        detail={"scopes": api_key.scopes},
    )
    return CreatedKey(key, api_key.id, clinic.id, is_new_clinic)


def authenticate(session: Session, *, key: str) -> Client | None:
    """Return the client a key belongs to, or None if it is unknown or revoked."""
    if not key.startswith(KEY_PREFIX):
        return None
    row = session.scalars(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    return Client(row.id, row.clinic_id, frozenset(row.scopes))


def find_clinic(session: Session, *, name: str) -> Clinic | None:
    """The clinic called ``name`` (surrounding spaces ignored), if any."""
    return session.scalars(select(Clinic).where(Clinic.name == name.strip())).one_or_none()


def get_or_create_clinic(
    session: Session, *, name: str, actor: audit_service.Actor, now: datetime
) -> tuple[Clinic, bool]:
    """Return the clinic called ``name`` and whether it was just created (and audited).

    Raises ValidationFailed on an empty name.
    """
    name = name.strip()
    if not name:
        raise ValidationFailed("The clinic name must not be empty.")
    clinic = find_clinic(session, name=name)
    if clinic is not None:
        return clinic, False
    clinic = Clinic(id=uuid.uuid4(), name=name, form_origins=[], created_at=now)
    session.add(clinic)
    session.flush()
    audit_service.append(
        session,
        action="clinic.created",
        actor=actor,
        clinic_id=clinic.id,
        target_type="clinic",
        target_id=str(clinic.id),
    )
    return clinic, True


def has_clinics(session: Session) -> bool:
    """Whether any clinic exists (the dev first run creates a demo clinic when none does)."""
    return bool(session.scalar(select(exists().where(Clinic.id.is_not(None)))))
