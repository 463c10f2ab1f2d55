"""The review queue: flagged screenings by urgency tier, then oldest first; filters; pages.

Tier 1 is a fired exclude flag (``screening.has_exclude``), tier 2 everything else flagged
(review flags, unknown flags). Oldest first within a tier: the longer a patient has waited,
the sooner they are seen (RSNA prioritized worklist). Filtering by rule uses
``screening_flag``, so nothing is decrypted until a page of rows is shown.
"""

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.crypto import KeyRing
from app.db.models import Decision, Review, Screening, ScreeningFlag
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

    def query_items(self, *, page: int | None = None) -> list[tuple[str, str]]:
        """The filter as query parameters (empty ones left out)."""
        items = [("decision", self.decision), ("rule", self.rule), ("status", self.status)]
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
class QueueRow:
    """One screening waiting for (or past) review."""

    screening_id: uuid.UUID
    created_at: datetime
    reference: str
    date_of_birth: str | None
    decision: str
    has_exclude: bool
    flags: tuple[FlagSummary, ...]


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
        answers.get("date_of_birth"),
        row.decision.value,
        row.has_exclude,
        flags,
    )


def next_open(
    session: Session, *, clinic_id: uuid.UUID, filters: QueueFilter, after: uuid.UUID
) -> uuid.UUID | None:
    """The first screening still open in the queue's order (other than ``after``), if any."""
    query = _filtered(clinic_id, QueueFilter(filters.decision, filters.rule, "open"))
    query = _ordered(query.where(Screening.id != after)).limit(1)
    return session.scalars(query.with_only_columns(Screening.id)).first()
