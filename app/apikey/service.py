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
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.db.models import ActorType, ApiKey, Clinic, UserAccount
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
# How stale ``api_key.last_used_at`` may be: refreshing it on every look-up would turn each
# cache miss into a write (and a row lock every replica queues on).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Client:
    """An authenticated API caller: its key, its clinic and what it may do."""

    api_key_id: uuid.UUID
    clinic_id: uuid.UUID
    scopes: frozenset[str]
    # A personal token acts as its user: audited as that user, refused on intake routes.
    user_id: uuid.UUID | None = None
    expires_at: datetime | None = None

    @property
    def is_personal(self) -> bool:
        """Whether this is a user's personal token rather than a clinic intake key."""
        return self.user_id is not None

    def is_live(self, now: datetime) -> bool:
        """Whether the key has not expired at ``now`` (a revoked key is never a Client)."""
        return self.expires_at is None or now < self.expires_at

    @property
    def actor(self) -> audit_service.Actor:
        """The audit actor: the user of a personal token, else this key."""
        if self.user_id is not None:
            return audit_service.Actor(ActorType.user, str(self.user_id))
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


def mint(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    name: str,
    scopes: list[str],
    now: datetime,
    expires_at: datetime | None,
    user_id: uuid.UUID | None = None,
) -> tuple[str, ApiKey]:
    """Store a new key (its hash only); return the plaintext (shown once) and its row.

    Every key is made here: intake keys, their rotated successors and personal tokens. The
    caller audits it (its event says which of those it is).
    """
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=uuid.uuid4(),
        clinic_id=clinic_id,
        name=name,
        key_hash=hash_key(key),
        scopes=scopes,
        created_at=now,
        expires_at=expires_at,
        user_id=user_id,
    )
    session.add(row)
    session.flush()
    return key, row


def create(
    session: Session,
    *,
    clinic_name: str,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    name: str = "default",
    actor: audit_service.Actor,
    now: datetime,
    create_clinic: bool = True,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """Create a key for ``clinic_name``, creating the clinic if it does not exist.

    Writes the clinic (if new), the key and their audit events. Raises ValidationFailed on
    an unknown scope or an empty clinic name, and on an unknown clinic unless
    ``create_clinic`` (the message suggests the closest existing name: a typo must not make
    a second clinic whose screenings no physician sees). ``expires_at`` None: never expires.
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValidationFailed(f"unknown scope(s): {', '.join(unknown) or '(none given)'}")
    if not create_clinic and find_clinic(session, name=clinic_name) is None:
        raise ValidationFailed(unknown_clinic_message(session, clinic_name))
    clinic, is_new_clinic = get_or_create_clinic(session, name=clinic_name, actor=actor, now=now)
    key, api_key = mint(
        session,
        clinic_id=clinic.id,
        name=name,
        scopes=list(dict.fromkeys(scopes)),
        now=now,
        expires_at=expires_at,
    )
    audit_service.append(
        session,
        action="apikey.created",
        actor=actor,
        clinic_id=clinic.id,
        target_type="api_key",
        target_id=str(api_key.id),
        detail={"scopes": api_key.scopes, "expires_at": iso(expires_at)},
    )
    return CreatedKey(key, api_key.id, clinic.id, is_new_clinic)


def iso(moment: datetime | None) -> str | None:
    """``moment`` as UTC ISO-8601 (``Z``) for audit details and listings; None stays None."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def live_key(session: Session, *, key: str, now: datetime) -> ApiKey | None:
    """The key row of ``key`` if live at ``now``: not revoked, not expired, user not disabled.

    Refreshes ``last_used_at`` (to the minute).
    """
    if not key.startswith(KEY_PREFIX):
        return None
    row = session.scalars(
        select(ApiKey).where(
            ApiKey.key_hash == hash_key(key),
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
        )
    ).one_or_none()
    if row is None:
        return None
    if row.user_id is not None:
        user = session.get(UserAccount, row.user_id)
        if user is None or user.disabled_at is not None:
            return None
    # A conditional UPDATE: no row lock at all while the stored value is recent enough.
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == row.id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return row


def authenticate(session: Session, *, key: str, now: datetime | None = None) -> Client | None:
    """Return the client a key belongs to, or None if it is unknown, revoked or expired."""
    row = live_key(session, key=key, now=now or datetime.now(UTC))
    if row is None:
        return None
    return Client(row.id, row.clinic_id, frozenset(row.scopes), row.user_id, row.expires_at)


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
