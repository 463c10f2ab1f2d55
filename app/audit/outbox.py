"""The transactional outbox: webhook events written with the audit event of the change.

``audit.service.append`` is the one writer of every change's audit event and runs in that
change's transaction, so the events it implies are inserted here, on the same connection,
with prepared statements (the screening write may already be pipelined on PostgreSQL).
Payloads are thin: ids, the decision, rule ids and links; never answers or subjects.
"""

import uuid
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Connection, Table, insert

from app.db.models import ActorType, WebhookEvent
from app.db.prepared import Prepared

EVENT_TYPES = (
    "screening.created",
    "screening.flagged",
    "screening.reviewed",
    "invitation.completed",
)
_TABLE = cast(Table, WebhookEvent.__table__)
_COLUMNS = [column.name for column in _TABLE.c]
_INSERT = Prepared(insert(_TABLE), _COLUMNS)
_SOURCES = frozenset({"screening.created", "review.recorded"})


def new_event_id() -> str:
    """A stable, unique event id (the ``webhook-id`` header receivers de-duplicate by)."""
    return f"msg_{uuid.uuid4().hex}"


def _links(screening_id: str) -> dict[str, str]:
    return {
        "screening": f"/v1/screenings/{screening_id}",
        "review": f"/review/screenings/{screening_id}",
    }


def _data(values: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (type, data) of each event an audited change implies, in delivery order."""
    detail = values["detail"] or {}
    screening_id = str(values["target_id"])
    links = _links(screening_id)
    if values["action"] == "review.recorded":
        data = {"screening_id": screening_id, "review_id": detail.get("review_id"),
                "disposition": detail.get("disposition"), "links": links}  # fmt: skip
        return [("screening.reviewed", data)]
    screening = {"screening_id": screening_id, "decision": detail.get("decision"),
                 "rules": list(detail.get("flags") or []), "source": detail.get("source"),
                 "links": links}  # fmt: skip
    found = [("screening.created", screening)]
    if detail.get("decision") in ("needs_review", "not_candidate"):
        found.append(("screening.flagged", screening))
    if values["actor_type"] == ActorType.invitation:
        invitation = {"invitation_id": values["actor_id"], "screening_id": screening_id,
                      "links": links}  # fmt: skip
        found.append(("invitation.completed", invitation))
    return found


def emit(connection: Connection, values: Mapping[str, Any]) -> None:
    """Insert the events implied by an audit event's ``values``; nothing for other actions.

    Only successful changes of a clinic count: refused or failed requests report nothing.
    """
    if values["action"] not in _SOURCES or values["clinic_id"] is None:
        return
    if str(values["outcome"]) != "success" or values["target_id"] is None:
        return
    occurred = values["occurred_at"]
    rows = [
        {
            "id": new_event_id(),
            "audit_seq": values["seq"],
            "position": position,
            "clinic_id": values["clinic_id"],
            "type": event_type,
            "order_key": str(values["target_id"]),
            "payload": {"type": event_type, "timestamp": occurred.isoformat(), "data": data},
            "created_at": occurred,
            "is_dispatched": False,
        }
        for position, (event_type, data) in enumerate(_data(values))
    ]
    _INSERT.executemany(connection, rows)
