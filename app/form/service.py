"""The patient form's state: open an invitation, keep its encrypted draft, submit it once.

Contracts: never commits. The draft (answers in progress) is AES-256-GCM encrypted on the
invitation row, bound to its column and row. Submitting calls the very ``submit`` the API
uses, so the stored screening equals an API submission of the same answers (source "form").
A submission is claimed with a conditional UPDATE, so two concurrent submits store one
screening; the second gets ``LinkUnavailable(used)``.
"""

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.crypto import KeyRing, field_aad
from app.db.models import ActorType, Invitation, Source
from app.db.unit import savepoint
from app.engine import Ruleset, RulesetError
from app.engine.translations import Catalogue, load_translations
from app.form import reading
from app.form.fields import reading_items
from app.form.pages import Draft
from app.form.text import Text
from app.invitation import service as invitation_service
from app.invitation.service import ClinicInfo, LinkProblem, LinkUnavailable
from app.rulepack import policy as rulepack_policy
from app.rulepack import translation as rulepack_translation
from app.rulepack.service import RulePackIntegrityError, RulesetCache
from app.screening import service as screening_service

__all__ = [
    "LinkProblem",
    "LinkUnavailable",
    "load_catalogues",
    "load_draft",
    "open_invitation",
    "pack_catalogues",
    "pinned_ruleset",
    "record_view",
    "save_draft",
    "set_language",
    "submit",
]
logger = logging.getLogger(__name__)
FORM_PREFIX = invitation_service.FORM_PREFIX


def open_invitation(
    session: Session, *, clinic_id: str, token: str, now: datetime, allow_used: bool = False
) -> tuple[Invitation, ClinicInfo]:
    """Return a usable invitation and its clinic; LinkUnavailable otherwise."""
    return invitation_service.resolve(
        session, clinic_id=clinic_id, token=token, now=now, allow_used=allow_used
    )


@dataclass
class PackUnavailable(Exception):
    """The invitation's rule pack fails its integrity check: a friendly 500 page, audited."""

    error: RulePackIntegrityError
    text: Text
    clinic: Any


def load_catalogues(pack_dir: Path) -> dict[str, Catalogue]:
    """The rule pack's questionnaire translations; none (English only) if they are invalid.

    ``screening rules check`` fails on invalid, missing or stale translations; at run time a
    broken catalogue must not take the form down, so it is logged and English is used.
    """
    try:
        return load_translations(pack_dir)
    except RulesetError as error:
        logger.error("questionnaire translations not loaded: %s", "; ".join(error.problems))
        return {}


def pinned_ruleset(
    session: Session, *, invitation: Invitation, rulesets: RulesetCache, default: Ruleset
) -> Ruleset:
    """The pack the invitation was created under: every page and the submission use it."""
    return rulepack_policy.invitation_ruleset(
        session, invitation=invitation, rulesets=rulesets, default=default
    )


def pack_catalogues(
    session: Session, *, sha256: str, fallback_dir: Path
) -> tuple[dict[str, Catalogue], bool]:
    """The translations stored with a pack, else the server's default pack's catalogues.

    Returns the catalogues and whether they are the pack's own (stored, so cacheable).
    The fallback is safe: a translation shows only while its English source is unchanged.
    """
    stored = rulepack_translation.load(session, sha256=sha256)
    if stored:
        return stored, True
    return load_catalogues(fallback_dir), False


def _aad(invitation: Invitation, column: str) -> bytes:
    return field_aad("invitation", column, invitation.id)


def load_draft(keyring: KeyRing, invitation: Invitation) -> Draft:
    """The answers in progress (empty before the first page is saved)."""
    if invitation.draft_ct is None:
        return Draft()
    plain = keyring.decrypt(invitation.key_id, invitation.draft_ct, _aad(invitation, "draft_ct"))
    return Draft.from_json(json.loads(plain))


def _invitation_actor(invitation: Invitation) -> audit_service.Actor:
    return audit_service.Actor(ActorType.invitation, str(invitation.id))


def record_view(
    session: Session, *, invitation: Invitation, page: str, request_id: str | None = None
) -> None:
    """Audit ``form.viewed``: someone holding the link saw a page of the form.

    A leaked link is then visible in the audit trail. The actor is the invitation; the
    detail names the kind of page (start, question, check, done), never an answer or the
    question asked (which page applies can itself say something about the patient).
    """
    audit_service.append(
        session,
        action="form.viewed",
        actor=_invitation_actor(invitation),
        clinic_id=invitation.clinic_id,
        target_type="invitation",
        target_id=invitation.id,
        request_id=request_id,
        detail={"page": page},
    )


def save_draft(
    session: Session,
    *,
    keyring: KeyRing,
    invitation: Invitation,
    draft: Draft,
    request_id: str | None = None,
) -> None:
    """Store the answers in progress, encrypted with the current data key.

    Audited as ``form.draft_saved`` by the invitation, with no answer and no item id.
    """
    if invitation.key_id != keyring.current_kid:
        # One key id covers both ciphertexts of the row: move the subject to the new key.
        invitation.key_id, invitation.subject_ct = keyring.reencrypt(
            invitation.key_id, invitation.subject_ct, _aad(invitation, "subject_ct")
        )
    plain = json.dumps(draft.to_json(), separators=(",", ":")).encode()
    _, invitation.draft_ct = keyring.encrypt(plain, _aad(invitation, "draft_ct"))
    session.flush()
    audit_service.append(
        session,
        action="form.draft_saved",
        actor=_invitation_actor(invitation),
        clinic_id=invitation.clinic_id,
        target_type="invitation",
        target_id=invitation.id,
        request_id=request_id,
    )


def set_language(session: Session, *, invitation: Invitation, language: str) -> None:
    """Remember the patient's chosen language on the invitation."""
    if invitation.language != language:
        invitation.language = language
        session.flush()


def _note_confirmed_reading(
    session: Session,
    ruleset: Ruleset,
    invitation: Invitation,
    answers: dict[str, Any],
    confirmed: str | None,
    request_id: str | None,
) -> None:
    """Audit ``form.reading_confirmed`` when the answers hold the reading the patient confirmed."""
    items = tuple(ruleset.questionnaire.items)
    shown = reading.unusual(items, answers)
    if shown is None or shown != confirmed:
        return
    audit_service.append(
        session,
        action=reading.AUDIT_ACTION,
        actor=audit_service.Actor(ActorType.invitation, str(invitation.id)),
        clinic_id=invitation.clinic_id,
        target_type="screening",
        target_id=invitation.screening_id,
        request_id=request_id,
        # Item ids, never the numbers: patient answers live only in the screening.
        detail={"items": [item.id for item in reading_items(items)]},
    )


def submit(
    session: Session,
    *,
    ruleset: Ruleset,
    keyring: KeyRing,
    invitation: Invitation,
    clinic: ClinicInfo,
    answers: dict[str, Any],
    now: datetime,
    as_of: date,
    request_id: str | None = None,
    confirmed_reading: str | None = None,
) -> uuid.UUID:
    """Store the screening once for this invitation and return its id.

    When the answers hold the unusual blood pressure reading the patient confirmed
    (``confirmed_reading``), an audit event ``form.reading_confirmed`` on the screening
    records it for the physician. Raises LinkUnavailable(used) if the invitation was already
    submitted, and the screening service's ValidationFailed if the answers are invalid
    (nothing is then changed).
    """
    with savepoint(session):
        claimed = session.execute(
            update(Invitation)
            .where(Invitation.id == invitation.id, Invitation.submitted_at.is_(None))
            .values(submitted_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise LinkUnavailable(LinkProblem.used, clinic)
        subject = invitation_service.decrypt_subject(keyring, invitation)
        session.flush()  # the claim goes first: submit writes on the connection
        created = screening_service.submit(
            session.connection(),
            ruleset=ruleset,
            keyring=keyring,
            clinic_id=invitation.clinic_id,
            actor=audit_service.Actor(ActorType.invitation, str(invitation.id)),
            submission=screening_service.Submission(ruleset.questionnaire.id, answers, subject),
            idempotency_key=None,
            now=now,
            as_of=as_of,
            request_id=request_id,
            source=Source.form,
        )
        invitation.screening_id = uuid.UUID(created.body["id"])
        invitation.submitted_at = now
        # The answers now live only in the screening; the draft is no longer needed.
        invitation.draft_ct = None
        session.flush()
        _note_confirmed_reading(
            session, ruleset, invitation, answers, confirmed_reading, request_id
        )
    return invitation.screening_id
