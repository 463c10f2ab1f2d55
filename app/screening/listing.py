"""The clinic's screening list: filters, keyset pagination, and the page as JSON bytes.

A page is built from the stored result bytes as they are (the stored result is the
response): decoding 50 results only to encode them again was half the cost of a page
(bench/README.md). Only a reviewed item is decoded, to fill in its review.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, exists, or_, select
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.crypto import KeyRing
from app.db.models import Decision, Review, Screening
from app.screening import cursor, store

MAX_PAGE = 100
# What a list page needs of each row (not the subject's and answers' ciphertexts).
_LISTED_COLUMNS = (Screening.id, Screening.created_at, Screening.key_id, Screening.result_ct)


@dataclass(frozen=True, slots=True)
class ListFilter:
    """Filters of the screening list; ``cursor`` is the opaque ``next_cursor``."""

    decision: str | None = None
    reviewed: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ScreeningList:
    """A page of ``GET /v1/screenings``: each item's body and the next cursor."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def list_screenings(
    session: Session,
    *,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    actor: audit_service.Actor,
    filters: ListFilter,
    request_id: str | None = None,
) -> "ScreeningList":
    """Return a page of the clinic's screenings, newest first (keyset pagination).

    Each item is the stored result with its latest review; the router serialises the page
    through ``ScreeningPage`` like every other response.
    """
    query = select(*_LISTED_COLUMNS).where(Screening.clinic_id == clinic_id)
    if filters.decision is not None:
        query = query.where(Screening.decision == Decision(filters.decision))
    if filters.reviewed is not None:
        has_review = exists().where(Review.screening_id == Screening.id)
        query = query.where(has_review if filters.reviewed else ~has_review)
    if filters.created_after is not None:
        query = query.where(Screening.created_at > filters.created_after)
    if filters.created_before is not None:
        query = query.where(Screening.created_at < filters.created_before)
    if filters.cursor is not None:
        at, last_id = cursor.decode(filters.cursor)
        query = query.where(
            Screening.created_at <= at,
            or_(
                Screening.created_at < at, and_(Screening.created_at == at, Screening.id < last_id)
            ),
        )
    limit = max(1, min(filters.limit, MAX_PAGE))
    query = query.order_by(Screening.created_at.desc(), Screening.id.desc()).limit(limit + 1)
    rows = list(session.execute(query))
    page, more = rows[:limit], len(rows) > limit
    ids = [row.id for row in page]
    audit_service.record_screenings_listed(
        session, clinic_id=clinic_id, screening_ids=ids, actor=actor, request_id=request_id
    )
    next_cursor = cursor.encode(page[-1].created_at, page[-1].id) if more else None
    # With reviewed=false no listed screening has a review: no need to look.
    unreviewed = filters.reviewed is False
    reviews = store.latest_reviews(session, [] if unreviewed else ids)
    items = [_result_body(keyring, row, reviews.get(row.id)) for row in page]
    return ScreeningList(items, next_cursor)


def _result_body(
    keyring: KeyRing, row: Row[uuid.UUID, datetime, str, bytes], review: dict[str, str] | None
) -> dict[str, Any]:
    """A listed screening's body: its stored result, with the review filled in."""
    body: dict[str, Any] = json.loads(store.decrypt_bytes(keyring, row, "result_ct"))
    body["review"] = review
    return body
