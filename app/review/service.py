"""Record physician sign-offs (append-only, If-Match guarded) and read a screening's reviews.

Contracts: functions take the caller's session and never commit. A review is never updated
or deleted; the latest one is the screening's review status. ``record`` writes the review
and its ``review.recorded`` audit event in the caller's transaction. Another clinic's
screening is NotFound.

Two physicians racing: ``record`` first locks the screening row (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite every transaction starts with ``BEGIN IMMEDIATE``, see
``app/db/engine.py``), then compares the ETag. The second transaction waits for the first to
commit, then sees its review, so its ETag is stale: exactly one review is stored.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.account.service import Principal
from app.audit import canonical
from app.audit import service as audit_service
from app.crypto import KeyRing, field_aad
from app.db.models import Review, Screening, UserAccount
from app.engine import Ruleset
from app.errors import AppError, Forbidden, NotFound, ProblemItem, ValidationFailed
from app.rulepack import service as rulepack_service
from app.screening import store
from app.screening.store import etag as etag  # the review API and pages use it from here
from app.screening.store import screening_row as screening_row

MAX_NOTE = 2000
# Coded reasons for clearing a screening despite a fired exclude rule (CDS Hooks
# overrideReasons): coded so that override patterns can be counted without reading notes.
OVERRIDE_REASONS = {
    "answer_corrected": "The patient corrected the answer with me",
    "condition_resolved": "The condition has resolved or no longer applies",
    "specialist_cleared": "Cleared by the treating specialist",
    "benefit_outweighs_risk": "Benefit outweighs the risk, with extra monitoring",
}


class Disposition(StrEnum):
    """A physician's sign-off."""

    cleared = "cleared"
    declined = "declined"
    needs_more_information = "needs_more_information"


DISPOSITION_LABELS = {
    Disposition.cleared: "Cleared for consultation",
    Disposition.declined: "Declined: not suitable",
    Disposition.needs_more_information: "Needs more information",
}


class PreconditionRequired(AppError):
    """A review was sent without ``If-Match``: it must name the version it was based on."""

    status = 428
    slug = "precondition-required"


@dataclass(frozen=True, slots=True)
class ReviewView:
    """One stored review, decrypted, with the reviewer's name."""

    id: uuid.UUID
    screening_id: uuid.UUID
    disposition: Disposition
    override_reason: str | None
    note: str
    reviewer_id: uuid.UUID | None
    reviewer_name: str
    created_at: datetime

    def to_dict(self) -> dict[str, object]:
        """The JSON form (``ReviewRead``)."""
        return {
            "id": str(self.id),
            "screening_id": str(self.screening_id),
            "disposition": self.disposition.value,
            "override_reason": self.override_reason,
            "note": self.note,
            "reviewer": {"id": str(self.reviewer_id), "name": self.reviewer_name},
            "created_at": canonical.format_datetime(self.created_at),
        }


class PreconditionFailed(AppError):
    """The screening changed (someone signed it) since the ETag the client sent."""

    status = 412
    slug = "precondition-failed"

    def __init__(self, latest: ReviewView | None, etag: str) -> None:
        who = "" if latest is None else f" by {latest.reviewer_name} at "
        when = "" if latest is None else canonical.format_datetime(latest.created_at)
        super().__init__(
            f"This screening was already signed{who}{when}; reload it and review again.",
            headers={"ETag": etag},
        )
        self.latest = latest
        self.etag = etag


@dataclass(frozen=True, slots=True)
class ReviewInput:
    """What a physician submitted."""

    disposition: Disposition
    note: str = ""
    override_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """The stored review and the screening's new ETag."""

    review: ReviewView
    etag: str


def matches(if_match: str, current: str) -> bool:
    """Whether an ``If-Match`` value names ``current`` (strong comparison, RFC 9110)."""
    return current in (part.strip() for part in if_match.split(","))


def validate(review: ReviewInput, *, has_exclude: bool) -> None:
    """ValidationFailed listing every problem; clearing a fired exclude needs a code + note."""
    problems = []
    if review.override_reason is not None and review.override_reason not in OVERRIDE_REASONS:
        problems.append(
            ProblemItem(
                "unknown_override_reason", "Choose a listed reason.", pointer="#/override_reason"
            )
        )
    if len(review.note) > MAX_NOTE:
        problems.append(
            ProblemItem(
                "note_too_long", f"Keep the note under {MAX_NOTE} characters.", pointer="#/note"
            )
        )
    if has_exclude and review.disposition is Disposition.cleared:
        if review.override_reason is None:
            problems.append(
                ProblemItem(
                    "override_reason_required",
                    "Choose why you are clearing a patient with an exclusion flag.",
                    pointer="#/override_reason",
                )
            )
        if not review.note.strip():
            problems.append(
                ProblemItem(
                    "note_required",
                    "Write a note explaining why the exclusion does not apply.",
                    pointer="#/note",
                )
            )
    if problems:
        raise ValidationFailed("The sign-off is not complete; nothing was saved.", errors=problems)


def record(
    session: Session,
    *,
    keyring: KeyRing,
    reviewer: Principal,
    screening_id: uuid.UUID,
    review: ReviewInput,
    if_match: str | None,
    now: datetime,
    request_id: str | None = None,
) -> Recorded:
    """Append a review if ``if_match`` names the current version; audit it.

    Raises Forbidden (not a physician), NotFound (other clinic), PreconditionRequired (no
    If-Match), PreconditionFailed (someone signed first: carries their review),
    ValidationFailed (see ``validate``).
    """
    if not reviewer.is_physician:
        raise Forbidden("Only a physician can sign off screenings.")
    if if_match is None:
        raise PreconditionRequired("Send If-Match with the ETag of the screening you reviewed.")
    row, latest = _locked_current(session, keyring, reviewer, screening_id, if_match)
    validate(review, has_exclude=row.has_exclude)
    # Reviews are ordered by time; a clock that did not move (tests, coarse clocks) must not
    # make two reviews tie, so the latest one stays unambiguous.
    created_at = now
    if latest is not None and created_at <= latest.created_at:
        created_at = latest.created_at + timedelta(microseconds=1)
    stored = _insert(session, keyring, row, reviewer, review, created_at)
    audit_service.record_screening_event(
        session,
        row=row,
        target_sha256=store.ScreeningContent.decrypt(keyring, row).digest(),
        action="review.recorded",
        actor=reviewer.actor,
        request_id=request_id,
        detail=_recorded_detail(stored, row, review),
    )
    view = ReviewView(
        stored.id,
        row.id,
        review.disposition,
        review.override_reason,
        review.note,
        reviewer.user_id,
        reviewer.display_name,
        created_at,
    )
    return Recorded(view, etag(row.id, stored.id))


def _recorded_detail(stored: Review, row: Screening, review: ReviewInput) -> dict[str, Any]:
    """The ``review.recorded`` detail: codes, flags and the review's digest (never the note).

    ``review_sha256`` lets ``audit verify`` find an edited or deleted review row.
    """
    return {
        "review_id": str(stored.id),
        "disposition": review.disposition.value,
        "override_reason": review.override_reason,
        "has_exclude": row.has_exclude,
        "has_note": bool(review.note.strip()),
        "review_sha256": canonical.review_content_digest(stored, note=review.note),
    }


def _locked_current(
    session: Session,
    keyring: KeyRing,
    reviewer: Principal,
    screening_id: uuid.UUID,
    if_match: str,
) -> tuple[Screening, Review | None]:
    """The screening, locked, and its latest review, if ``if_match`` names their version."""
    row = session.scalars(
        select(Screening)
        .where(Screening.id == screening_id, Screening.clinic_id == reviewer.clinic_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound("No screening with this id.")
    latest = store.latest_review(session, screening_id)
    current = etag(screening_id, None if latest is None else latest.id)
    if not matches(if_match, current):
        raise PreconditionFailed(
            None if latest is None else _view(session, keyring, latest), current
        )
    return row, latest


def _insert(
    session: Session,
    keyring: KeyRing,
    row: Screening,
    reviewer: Principal,
    review: ReviewInput,
    created_at: datetime,
) -> Review:
    review_id = uuid.uuid4()
    key_id, note_ct = keyring.encrypt(
        review.note.encode(), field_aad("review", "note_ct", review_id)
    )
    stored = Review(
        id=review_id,
        screening_id=row.id,
        clinic_id=row.clinic_id,
        reviewer_id=reviewer.user_id,
        disposition=review.disposition.value,
        override_reason=review.override_reason,
        note_ct=note_ct,
        key_id=key_id,
        created_at=created_at,
    )
    session.add(stored)
    session.flush()
    return stored


def _view(session: Session, keyring: KeyRing, review: Review) -> ReviewView:
    user = None if review.reviewer_id is None else session.get(UserAccount, review.reviewer_id)
    note = keyring.decrypt(review.key_id, review.note_ct, field_aad("review", "note_ct", review.id))
    return ReviewView(
        review.id,
        review.screening_id,
        Disposition(review.disposition),
        review.override_reason,
        note.decode(),
        review.reviewer_id,
        "an unknown user" if user is None else user.display_name,
        review.created_at,
    )


def history(
    session: Session, *, keyring: KeyRing, clinic_id: uuid.UUID, screening_id: uuid.UUID
) -> list[ReviewView]:
    """Every review of one of the clinic's screenings, newest first; NotFound otherwise."""
    screening_row(session, clinic_id=clinic_id, screening_id=screening_id)
    rows = session.scalars(
        select(Review)
        .where(Review.screening_id == screening_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
    )
    return [_view(session, keyring, review) for review in rows]


def read_history(
    session: Session,
    *,
    keyring: KeyRing,
    reader: Principal,
    screening_id: uuid.UUID,
    request_id: str | None = None,
) -> list[ReviewView]:
    """``history`` for the review API, audited as ``review.listed`` (notes are PHI)."""
    views = history(session, keyring=keyring, clinic_id=reader.clinic_id, screening_id=screening_id)
    row = session.get_one(Screening, screening_id)  # loaded by history: no second query
    audit_service.record_screening_event(
        session,
        row=row,
        target_sha256=store.ScreeningContent.decrypt(keyring, row).digest(),
        action="review.listed",
        actor=reader.actor,
        request_id=request_id,
        detail={"count": len(views)},
    )
    return views


def rule_pack(session: Session, *, sha256: str) -> Ruleset:
    """The exact rule pack a stored screening was evaluated with (titles, wording, rationale)."""
    return rulepack_service.stored_ruleset(session, sha256=sha256)


def _flag_rank(flag: dict[str, Any]) -> int:
    # Fired before unknown, exclude before review: the order a physician must read them in.
    return int(flag["status"] != "fired") * 2 + int(flag["severity"] != "exclude")


def ordered_flags(flags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Result flags by urgency (stable: the rule pack's order within a rank)."""
    return sorted(flags, key=_flag_rank)
