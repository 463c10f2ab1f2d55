"""Create and resolve patient invitations; configure a clinic's form (phone, framing origins).

Contracts: functions take the caller's session and never commit. A token is 256 random bits
(URL-safe), returned once; only its sha256 is stored. A token resolves only together with its
clinic, before its expiry and before its one submission; every other case is
``LinkUnavailable`` with the reason, which the form shows as a friendly page. Tokens are never
logged, audited or put in an error message.
"""

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.crypto import KeyRing, field_aad
from app.db.models import Clinic, Invitation
from app.errors import Conflict, NotFound, ProblemItem, ValidationFailed

SCOPE = apikey_service.INVITATIONS_WRITE
Client = apikey_service.Client
LANGUAGES = ("en", "es")
DEFAULT_LIFETIME = timedelta(days=7)
MAX_LIFETIME = timedelta(days=30)
FORM_PREFIX = "/form"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_ORIGIN = re.compile(r"^https?://(?:[a-z0-9-]+\.)*[a-z0-9-]+(?::[0-9]{1,5})?$")


class LinkProblem(StrEnum):
    """Why an invitation link cannot be used."""

    unknown = "unknown"  # never issued, mistyped, tampered, or another clinic's
    expired = "expired"
    used = "used"


@dataclass(frozen=True, slots=True)
class ClinicInfo:
    """What the form shows of a clinic and who may frame its pages (a plain snapshot)."""

    id: uuid.UUID
    name: str
    phone: str | None
    form_origins: tuple[str, ...]

    @classmethod
    def of(cls, clinic: Clinic) -> "ClinicInfo":
        """Snapshot a clinic row (usable after the transaction ends)."""
        return cls(clinic.id, clinic.name, clinic.phone, tuple(clinic.form_origins or ()))


class LinkUnavailable(Exception):
    """An invitation link that cannot open the form; ``clinic`` is known from the URL."""

    def __init__(
        self,
        problem: LinkProblem,
        clinic: ClinicInfo | None,
        screening_id: uuid.UUID | None = None,
    ) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.clinic = clinic
        self.screening_id = screening_id  # of a used link: its confirmation reference


@dataclass(frozen=True, slots=True)
class CreatedInvitation:
    """A new invitation; ``path`` holds the only copy of the token."""

    invitation_id: uuid.UUID
    path: str
    expires_at: datetime


def hash_token(token: str) -> str:
    """Return the stored form of a token: its sha256 hex digest."""
    return hashlib.sha256(token.encode()).hexdigest()


def form_path(clinic_id: uuid.UUID, token: str) -> str:
    """The form's start page for an invitation (the URL the patient opens)."""
    return f"{FORM_PREFIX}/{clinic_id}/{token}"


def _invalid(detail: str, pointer: str, code: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[ProblemItem(code, detail, pointer=pointer)])


def _require_phone(session: Session, clinic_id: uuid.UUID) -> None:
    clinic = session.get_one(Clinic, clinic_id)
    if not clinic.phone:
        raise Conflict(
            f"Set the clinic's phone number before inviting patients: "
            f"screening form configure --clinic {clinic.name[:100]!r} --phone NUMBER"
        )


def _checked_expiry(*, language: str, expires_at: datetime | None, now: datetime) -> datetime:
    """The invitation's expiry; ValidationFailed for a bad one or an unsupported language."""
    if language not in LANGUAGES:
        raise _invalid("The language is not supported.", "#/language", "bad_choice")
    expires = expires_at if expires_at is not None else now + DEFAULT_LIFETIME
    if not now < expires <= now + MAX_LIFETIME:
        detail = "expires_at must be in the future and at most 30 days away."
        raise _invalid(detail, "#/expires_at", "out_of_range")
    return expires


def create(
    session: Session,
    *,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    subject: dict[str, Any],
    language: str,
    expires_at: datetime | None,
    now: datetime,
    actor: audit_service.Actor,
    request_id: str | None = None,
    rule_pack_sha256: str | None = None,
) -> CreatedInvitation:
    """Store an invitation (subject encrypted, token hashed) and its audit event.

    ``rule_pack_sha256`` pins the clinic's pack active now: the form uses it to the end.

    Raises ValidationFailed for an expiry in the past or more than 30 days away, or an
    unsupported language; Conflict when the clinic has no phone number (every form page
    tells the patient whom to call: "Contact X" without a number is no help).
    """
    _require_phone(session, clinic_id)
    expires = _checked_expiry(language=language, expires_at=expires_at, now=now)
    token = secrets.token_urlsafe(32)
    invitation_id = uuid.uuid4()
    key_id, subject_ct = keyring.encrypt(
        _json_bytes(subject), field_aad("invitation", "subject_ct", invitation_id)
    )
    session.add(
        Invitation(
            id=invitation_id,
            clinic_id=clinic_id,
            token_hash=hash_token(token),
            key_id=key_id,
            subject_ct=subject_ct,
            draft_ct=None,
            language=language,
            created_at=now,
            expires_at=expires,
            submitted_at=None,
            screening_id=None,
            rule_pack_sha256=rule_pack_sha256,
        )
    )
    session.flush()
    audit_service.append(
        session,
        action="invitation.created",
        actor=actor,
        clinic_id=clinic_id,
        target_type="invitation",
        target_id=invitation_id,
        request_id=request_id,
        ruleset_sha256=rule_pack_sha256,
        detail={"language": language, "expires_at": expires.isoformat()},
    )
    return CreatedInvitation(invitation_id, form_path(clinic_id, token), expires)


def resolve(
    session: Session, *, clinic_id: str, token: str, now: datetime, allow_used: bool = False
) -> tuple[Invitation, ClinicInfo]:
    """Return the invitation of a token and its clinic (``clinic_id`` as found in the URL).

    Raises LinkUnavailable: ``unknown`` when no invitation of this clinic has this token,
    ``expired`` after its expiry, ``used`` once submitted (unless ``allow_used``).
    """
    clinic = find_clinic(session, clinic_id=clinic_id)
    invitation = None
    if clinic is not None and _TOKEN.match(token):
        invitation = session.scalars(
            select(Invitation).where(
                Invitation.token_hash == hash_token(token), Invitation.clinic_id == clinic.id
            )
        ).one_or_none()
    if clinic is None or invitation is None:
        raise LinkUnavailable(LinkProblem.unknown, clinic)
    if invitation.submitted_at is not None:
        if allow_used:
            return invitation, clinic
        raise LinkUnavailable(LinkProblem.used, clinic, invitation.screening_id)
    if invitation.expires_at <= now:
        raise LinkUnavailable(LinkProblem.expired, clinic)
    return invitation, clinic


def find_clinic(session: Session, *, clinic_id: str) -> ClinicInfo | None:
    """Return a clinic by its id as found in a URL; None if there is no such clinic."""
    try:
        parsed = uuid.UUID(clinic_id)
    except ValueError:
        return None
    clinic = session.get(Clinic, parsed)
    return None if clinic is None else ClinicInfo.of(clinic)


def decrypt_subject(keyring: KeyRing, invitation: Invitation) -> dict[str, Any]:
    """Return the invitation's subject (the clinic's reference for the patient)."""
    aad = field_aad("invitation", "subject_ct", invitation.id)
    subject: dict[str, Any] = json.loads(
        keyring.decrypt(invitation.key_id, invitation.subject_ct, aad)
    )
    return subject


def normalize_origin(origin: str) -> str:
    """Return an origin as CSP and postMessage expect it; ValidationFailed if it is not one.

    An origin is ``scheme://host[:port]``, without path, query, wildcard or trailing slash.
    """
    value = origin.strip().lower().rstrip("/")
    if not _ORIGIN.match(value):
        detail = f"{origin[:100]!r} is not an origin such as https://www.clinic.example"
        raise _invalid(detail, "#/form_origins", "invalid_origin")
    return value


def configure_clinic(
    session: Session,
    *,
    clinic_name: str,
    phone: str | None,
    form_origins: list[str] | None,
    actor: audit_service.Actor,
) -> Clinic:
    """Set the phone number patients see and the origins allowed to frame the form.

    ``None`` leaves a setting unchanged; an empty origin list means no site may frame the
    form. Raises NotFound for an unknown clinic and ValidationFailed for a bad origin.
    """
    clinic = session.scalars(select(Clinic).where(Clinic.name == clinic_name)).one_or_none()
    if clinic is None:
        raise NotFound(f"No clinic named {clinic_name[:100]!r}.")
    if phone is not None:
        clinic.phone = phone.strip() or None
    if form_origins is not None:
        clinic.form_origins = list(dict.fromkeys(normalize_origin(o) for o in form_origins))
    session.flush()
    audit_service.append(
        session,
        action="clinic.form_configured",
        actor=actor,
        clinic_id=clinic.id,
        target_type="clinic",
        target_id=clinic.id,
        detail={"phone_set": clinic.phone is not None, "form_origins": clinic.form_origins},
    )
    return clinic


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def purge_expired_drafts(session: Session, *, now: datetime, actor: audit_service.Actor) -> int:
    """Delete the answers in progress of invitations that expired unsubmitted.

    The invitation row stays (the audit trail names it); only its encrypted draft goes. One
    audit event records how many were purged. Never commits.

    Returns:
        The number of invitations whose draft was deleted.
    """
    expired = select(Invitation.id).where(
        Invitation.expires_at < now,
        Invitation.submitted_at.is_(None),
        Invitation.draft_ct.is_not(None),
    )
    ids = list(session.scalars(expired))
    if ids:
        session.execute(update(Invitation).where(Invitation.id.in_(ids)).values(draft_ct=None))
        audit_service.append(
            session,
            action="invitation.drafts_purged",
            actor=actor,
            clinic_id=None,
            target_type="invitation",
            detail={"invitations": len(ids)},
        )
    return len(ids)
