"""The review queue: flagged screenings by urgency tier, then oldest first; filters; pages.

Tier 1 is a fired exclude flag (``screening.has_exclude``), tier 2 everything else flagged
(review flags, unknown flags). Oldest first within a tier: the longer a patient has waited,
the sooner they are seen (RSNA prioritized worklist). Filtering by rule uses
``screening_flag``, so nothing is decrypted until a page of rows is shown.
"""

import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.crypto import KeyRing, field_aad
from app.db.models import Decision, Review, Screening, ScreeningFlag, UserAccount
from app.review import context
from app.review import service as review_service
from app.screening import store

PAGE_SIZE = 20
FLAGGED = (Decision.not_candidate, Decision.needs_review)
STATUSES = {
    "open": "Not yet signed off",
    "more_information": "Waiting for more information",
    "signed": "Signed off",
    "all": "All flagged screenings",
}


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """The queue's GET parameters (bookmarkable)."""

    decision: str | None = None
    rule: str | None = None
    status: str = "open"
    page: int = 1
    search: str = ""

    def query_items(self, *, page: int | None = None) -> list[tuple[str, str]]:
        """The filter as query parameters (empty ones left out)."""
        items = [("decision", self.decision), ("rule", self.rule), ("status", self.status)]
        items.append(("q", self.search))
        items.append(("page", str(page or self.page)))
        return [(key, value) for key, value in items if value]


@dataclass(frozen=True, slots=True)
class FlagSummary:
    """One flag in a queue row: the rule title, severity and status."""

    rule: str
    title: str
    severity: str
    status: str


@dataclass(frozen=True, slots=True)
class SignedBy:
    """The latest sign-off of a screening: the outcome, who and when."""

    disposition: str
    reviewer_name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One screening waiting for (or past) review."""

    screening_id: uuid.UUID
    created_at: datetime
    reference: str
    date_of_birth: str | None
    decision: str
    has_exclude: bool
    flags: tuple[FlagSummary, ...]
    form_reference: str = ""
    patient: str = ""
    signed: SignedBy | None = None


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One page of the queue."""

    rows: tuple[QueueRow, ...]
    total: int
    page: int
    pages: int


def _latest_disposition() -> Any:
    return (
        select(Review.disposition)
        .where(Review.screening_id == Screening.id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(1)
        .correlate(Screening)
        .scalar_subquery()
    )


def _filtered(clinic_id: uuid.UUID, filters: QueueFilter) -> Select[Screening]:
    query = select(Screening).where(Screening.clinic_id == clinic_id)
    decisions = [d for d in FLAGGED if filters.decision in (None, d.value)]
    query = query.where(Screening.decision.in_(decisions))
    if filters.rule:
        query = query.where(
            exists().where(
                ScreeningFlag.screening_id == Screening.id, ScreeningFlag.rule == filters.rule
            )
        )
    latest = _latest_disposition()
    if filters.status == "open":
        query = query.where(~exists().where(Review.screening_id == Screening.id))
    elif filters.status == "more_information":
        query = query.where(latest == review_service.Disposition.needs_more_information.value)
    elif filters.status == "signed":
        query = query.where(latest.in_(["cleared", "declined"]))
    return query


def _searched(
    session: Session, keyring: KeyRing, query: Select[Screening], search: str
) -> Select[Screening]:
    """Only screenings whose subject reference or form reference is exactly ``search``.

    Subject references are encrypted, so they are compared after decrypting each candidate's
    subject (one small field per flagged screening of the clinic); a form reference
    (``ABCD-1234``, the first 8 hex digits of the id) is a range of ids.
    """
    wanted = search.strip()
    ids = [
        row_id
        for row_id, key_id, subject_ct in session.execute(
            query.with_only_columns(Screening.id, Screening.key_id, Screening.subject_ct)
        )
        if _reference(keyring, row_id, key_id, subject_ct) == wanted
    ]
    digits = wanted.replace("-", "").replace(" ", "").lower()
    matches: ColumnElement[bool] = Screening.id.in_(ids)
    if re.fullmatch(r"[0-9a-f]{8}", digits):
        low, high = uuid.UUID(digits + "0" * 24), uuid.UUID(digits + "f" * 24)
        matches = or_(matches, Screening.id.between(low, high))
    return query.where(matches)


def _reference(keyring: KeyRing, row_id: uuid.UUID, key_id: str, subject_ct: bytes) -> str:
    subject = json.loads(
        keyring.decrypt(key_id, subject_ct, field_aad("screening", "subject_ct", row_id))
    )
    return str(subject.get("reference", "")) if isinstance(subject, dict) else ""


def _ordered(query: Select[Screening]) -> Select[Screening]:
    return query.order_by(Screening.has_exclude.desc(), Screening.created_at, Screening.id)


def list_queue(
    session: Session,
    *,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    actor: audit_service.Actor,
    filters: QueueFilter,
    request_id: str | None = None,
) -> QueuePage:
    """One page of the clinic's queue; the read of the listed screenings is audited."""
    query = _filtered(clinic_id, filters)
    if filters.search:
        query = _searched(session, keyring, query, filters.search)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(1, filters.page), pages)
    rows = list(session.scalars(_ordered(query).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    audit_service.record_screenings_listed(
        session,
        clinic_id=clinic_id,
        screening_ids=[row.id for row in rows],
        actor=actor,
        request_id=request_id,
        via="review_queue",
    )
    return QueuePage(tuple(_row(session, keyring, row) for row in rows), total, page, pages)


def _row(session: Session, keyring: KeyRing, row: Screening) -> QueueRow:
    pack = review_service.rule_pack(session, sha256=row.rule_pack_sha256)
    titles = {rule.id: rule.title for rule in pack.rules}
    content = store.ScreeningContent.decrypt(keyring, row)
    result, answers = content.result, content.answers
    flags = tuple(
        FlagSummary(
            flag["rule"], titles.get(flag["rule"], flag["rule"]), flag["severity"], flag["status"]
        )
        for flag in review_service.ordered_flags(result["flags"])
    )
    return QueueRow(
        row.id,
        row.created_at,
        str(result.get("subject", {}).get("reference", "")),
        answers.get(context.DATE_OF_BIRTH),
        row.decision.value,
        row.has_exclude,
        flags,
        store.reference_number(row.id),
        context.age_line(answers.get(context.DATE_OF_BIRTH), row.as_of_date),
        _signed_by(session, row.id),
    )


def _signed_by(session: Session, screening_id: uuid.UUID) -> SignedBy | None:
    latest = session.execute(
        select(Review.disposition, UserAccount.display_name, Review.created_at)
        .outerjoin(UserAccount, UserAccount.id == Review.reviewer_id)
        .where(Review.screening_id == screening_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return None
    return SignedBy(latest[0], latest[1] or "an unknown user", latest[2])


def next_open(
    session: Session, *, clinic_id: uuid.UUID, filters: QueueFilter, after: uuid.UUID
) -> uuid.UUID | None:
    """The first screening still open in the queue's order (other than ``after``), if any."""
    query = _filtered(clinic_id, QueueFilter(filters.decision, filters.rule, "open"))
    query = _ordered(query.where(Screening.id != after)).limit(1)
    return session.scalars(query.with_only_columns(Screening.id)).first()
