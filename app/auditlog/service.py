"""Reading a clinic's audit trail: pages of its events, each read itself audited."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import canonical
from app.audit import service as audit_service
from app.db.models import AuditEvent, Screening
from app.errors import NotFound

MAX_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of audit events, oldest first, and the cursor of the next page."""

    events: Sequence[AuditEvent]
    next_cursor: int | None


def list_events(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    target: str | None = None,
    limit: int = 100,
    cursor: int | None = None,
) -> EventPage:
    """Return one clinic's audit events, oldest first, with keyset pagination on ``seq``.

    Args:
        session: Any session.
        clinic_id: Only this clinic's events are visible.
        target: ``"<type>/<id>"`` (for example ``"screening/<uuid>"``) or a bare target id.
        limit: Page size, clamped to ``1..MAX_PAGE_SIZE``.
        cursor: The ``next_cursor`` of the previous page (events after that seq).
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    query = select(AuditEvent).where(AuditEvent.clinic_id == clinic_id)
    if target is not None:
        target_type, sep, target_id = target.rpartition("/")
        query = query.where(AuditEvent.target_id == target_id)
        if sep:
            query = query.where(AuditEvent.target_type == target_type)
    if cursor is not None:
        query = query.where(AuditEvent.seq > cursor)
    events = list(session.scalars(query.order_by(AuditEvent.seq).limit(limit + 1)))
    has_more = len(events) > limit
    events = events[:limit]
    return EventPage(events=events, next_cursor=events[-1].seq if has_more else None)


def event_dict(event: AuditEvent) -> dict[str, Any]:
    """The JSON form of an event in ``GET /v1/audit/events`` (every hashed field but clinic)."""
    return {
        "seq": event.seq,
        "occurred_at": canonical.format_datetime(event.occurred_at),
        "actor_type": str(event.actor_type),
        "actor_id": event.actor_id,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_sha256": event.target_sha256,
        "outcome": str(event.outcome),
        "request_id": event.request_id,
        "ruleset_sha256": event.ruleset_sha256,
        "detail": event.detail,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }


def read_events(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    actor: audit_service.Actor,
    target: str | None = None,
    limit: int = 100,
    cursor: int | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Return ``{"items", "next_cursor"}`` of the clinic's own events; audit the read.

    Records ``audit.listed`` naming the filter's target (so a screening's trail shows who read
    it). A ``screening:<id>`` target that is not one of the clinic's screenings is NotFound,
    exactly like ``GET /v1/screenings/{id}``.

    Raises:
        NotFound: For another clinic's (or no) screening.
        ValueError: If ``target`` does not match :data:`TARGET_PATTERN` (the router checks).
    """
    target_type, target_id = (None, None) if target is None else audit_service.parse_target(target)
    if target_type == "screening" and not _is_clinics_screening(session, clinic_id, target_id):
        raise NotFound("No screening with this id.")
    wanted = None if target_id is None else f"{target_type or ''}/{target_id}".lstrip("/")
    page = list_events(session, clinic_id=clinic_id, target=wanted, limit=limit, cursor=cursor)
    items = [event_dict(event) for event in page.events]
    audit_service.append(
        session,
        action="audit.listed",
        actor=actor,
        clinic_id=clinic_id,
        target_type=target_type,
        target_id=target_id,
        request_id=request_id,
        detail={
            "count": len(items),
            "first_seq": items[0]["seq"] if items else None,
            "last_seq": items[-1]["seq"] if items else None,
        },
    )
    next_cursor = None if page.next_cursor is None else str(page.next_cursor)
    return {"items": items, "next_cursor": next_cursor}


def _is_clinics_screening(session: Session, clinic_id: uuid.UUID, target_id: str | None) -> bool:
    try:
        screening_id = uuid.UUID(target_id or "")
    except ValueError:
        return False
    found = session.scalar(
        select(Screening.id).where(Screening.id == screening_id, Screening.clinic_id == clinic_id)
    )
    return found is not None
