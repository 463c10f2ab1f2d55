"""append(): the only writer of audit_event; list_events() for a clinic's own audit trail.

Chain position. ``append`` first runs ``UPDATE audit_head SET seq = seq + 1 ... RETURNING``,
which takes the chain head's row lock on PostgreSQL (the same serialization as ``SELECT ...
FOR UPDATE``, held until the caller commits) and the database write lock on SQLite *before*
the head is read, so there is never a read-then-write lock upgrade. One statement serves both
backends, so no dialect branch is needed. Because the head update rolls back with the
transaction, sequence numbers have no gaps and commit order equals chain order.

``append`` never commits: the business change and its event commit together at the edge.
Call it as late as possible in the transaction; the head stays locked until commit.

No PHI in ``detail``: ids, counts, outcomes, rule ids and digests only.
"""

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, insert, update
from sqlalchemy.orm import Session

from app.audit import canonical, outbox
from app.db.models import ActorType, AuditEvent, AuditHead, AuditOutcome, Screening
from app.db.prepared import Prepared
from app.db.unit import UnitOfWork, pipeline_to_commit

__all__ = [
    "HASHED_COLUMNS",
    "TARGET_PATTERN",
    "Actor",
    "Appended",
    "AuditChainError",
    "append",
    "append_separately",
    "hashed_fields",
    "parse_target",
]

# Every column the event hash covers, in the order verify selects them (hash excluded;
# prev_hash is chained in front of the canonical bytes rather than inside them).
HASHED_COLUMNS = (
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "clinic_id",
    "action",
    "target_type",
    "target_id",
    "target_sha256",
    "outcome",
    "request_id",
    "ruleset_sha256",
    "detail",
)
# ``<type>:<id>`` or a bare id, as ``GET /v1/audit/events?target=`` takes it. Ids only: never
# anything a caller could smuggle PHI through.
TARGET_PATTERN = r"^(?:[a-z][a-z_]{0,31}:)?[A-Za-z0-9._-]{1,64}$"
_TARGET = re.compile(TARGET_PATTERN)
_HEAD_ID = 1
_HEAD_TABLE = cast(Table, AuditHead.__table__)
_EVENT_TABLE = cast(Table, AuditEvent.__table__)
_EVENT_COLUMNS = (*HASHED_COLUMNS, "prev_hash", "hash")
# Statements built once: building and cache-keying them per call showed in profiles.
_NEXT_SEQ = Prepared(
    update(_HEAD_TABLE)
    .where(_HEAD_TABLE.c.id == bindparam("head_id"))
    .values(seq=_HEAD_TABLE.c.seq + 1)
    .returning(_HEAD_TABLE.c.seq, _HEAD_TABLE.c.hash)
)
_INSERT_EVENT = Prepared(insert(_EVENT_TABLE), _EVENT_COLUMNS)
_SET_HEAD_HASH = Prepared(
    update(_HEAD_TABLE)
    .where(_HEAD_TABLE.c.id == bindparam("head_id"))
    .values(hash=bindparam("head_hash"))
)


class AuditChainError(RuntimeError):
    """The chain head is missing: the database is not migrated."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: an API key id, a user id, an invitation id, or the CLI / system."""

    type: ActorType
    id: str | None = None

    @classmethod
    def cli(cls) -> "Actor":
        """The operator running a ``screening`` command."""
        return cls(ActorType.cli, "cli")

    @classmethod
    def system(cls) -> "Actor":
        """The service itself (startup, background jobs)."""
        return cls(ActorType.system, "system")


class Appended(NamedTuple):
    """Where ``append`` put an event in the chain."""

    seq: int
    hash: str


def hashed_fields(values: Sequence[Any]) -> dict[str, Any]:
    """Map values given in :data:`HASHED_COLUMNS` order to the dict the chain hash covers.

    ``clinic_id`` is rendered as a string so a UUID from the database and one passed by a
    caller hash identically; enums are ``str`` already.
    """
    fields = dict(zip(HASHED_COLUMNS, values, strict=True))
    if fields["clinic_id"] is not None:
        fields["clinic_id"] = str(fields["clinic_id"])
    return fields


def _jsonable_detail(detail: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # Store exactly what a JSON round trip gives back, so the hash computed now equals the one
    # recomputed from the stored (possibly JSONB) value: tuples become lists, dates strings.
    if detail is None:
        return None
    value: dict[str, Any] = json.loads(canonical.dumps(detail))
    return value


def append(
    db: Session | Connection,
    *,
    action: str,
    actor: Actor,
    clinic_id: uuid.UUID | None,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    target_sha256: str | None = None,
    outcome: AuditOutcome | str = AuditOutcome.success,
    request_id: str | None = None,
    ruleset_sha256: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> Appended:
    """Append one event to the hash chain in the caller's transaction (never commits).

    Args:
        db: The session or connection whose transaction also holds the recorded change.
        action: Dotted past tense, for example ``"screening.created"``.
        actor: Who acted.
        clinic_id: The clinic the event belongs to (``None`` for global events).
        target_type: What was acted on (``"screening"``, ``"rule_pack"``, ...).
        target_id: Its id.
        target_sha256: Digest of the target's stored plaintext content (a screening's
            ``ScreeningContent.digest``); verified by ``audit verify``.
        outcome: ``success``, ``denied``, ``failed``, ``not_found`` or ``invalid``.
        request_id: The HTTP request id, if any.
        ruleset_sha256: The rule pack in force.
        detail: Small JSON object of ids, counts and codes. Never PHI.

    Returns:
        The event's ``seq`` and ``hash``, written with prepared statements (``app.db.prepared``):
        the ORM path was most of a screening write's cost (bench/README.md).

    Raises:
        AuditChainError: If the ``audit_head`` row is missing.
        TypeError: If ``detail`` has no canonical JSON form.
    """
    connection = _connection_after_flush(db)
    seq, prev_hash = _lock_head(connection)
    pipeline_to_commit(connection)  # the chain head is locked: the rest in one round trip
    values: dict[str, Any] = {
        "seq": seq,
        "occurred_at": datetime.now(UTC),
        "actor_type": ActorType(actor.type),
        "actor_id": actor.id,
        "clinic_id": clinic_id,
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "target_sha256": target_sha256,
        "outcome": AuditOutcome(outcome),
        "request_id": request_id,
        "ruleset_sha256": ruleset_sha256,
        "detail": _jsonable_detail(detail),  # keys checked here; the rest are scalars
    }
    return _chain(connection, values, prev_hash)


def _lock_head(connection: Connection) -> tuple[int, str]:
    """Take the next seq and the previous hash, locking the chain head until commit."""
    head = _NEXT_SEQ.execute(connection, {"head_id": _HEAD_ID})
    if head is None:
        raise AuditChainError("audit_head row missing: run `screening db upgrade`")
    return head[0], head[1]


def _connection_after_flush(db: Session | Connection) -> Connection:
    """The connection of ``db``; a session's pending rows flushed first (lock the head late)."""
    if isinstance(db, Session):
        db.flush()
        return db.connection()
    return db


def _chain(connection: Connection, values: dict[str, Any], prev_hash: str) -> Appended:
    """Hash the event onto ``prev_hash``, insert it and move the head to it."""
    fields = hashed_fields([values[name] for name in HASHED_COLUMNS])
    event_hash = canonical.chain_hash(prev_hash, fields, checked=False)
    _INSERT_EVENT.execute(connection, values | {"prev_hash": prev_hash, "hash": event_hash})
    _SET_HEAD_HASH.execute(connection, {"head_id": _HEAD_ID, "head_hash": event_hash})
    outbox.emit(connection, values)  # webhook events ride on the change's transaction too
    return Appended(values["seq"], event_hash)


def append_separately(unit: UnitOfWork, **fields: Any) -> Appended:
    """Append one event in its own short transaction, committed before returning.

    For denied and failed requests: their own transaction has rolled back, so the event
    cannot ride on it. ``fields`` are the keyword arguments of :func:`append`.
    """
    with unit.session() as session:
        return append(session, **fields)


def parse_target(target: str) -> tuple[str | None, str]:
    """Split ``"<type>:<id>"`` (or a bare id) into ``(type or None, id)``.

    Raises:
        ValueError: If ``target`` does not match :data:`TARGET_PATTERN`.
    """
    if not _TARGET.fullmatch(target):
        raise ValueError("not a <type>:<id> target")
    target_type, _, target_id = target.rpartition(":")
    return target_type or None, target_id


def record_screening_event(
    session: Session,
    *,
    row: Screening,
    target_sha256: str,
    action: str,
    actor: Actor,
    request_id: str | None,
    detail: dict[str, Any],
) -> None:
    """Append an event about one screening: its clinic, id, rule pack and content digest.

    ``target_sha256`` is the digest of its decrypted stored content
    (``ScreeningContent.digest`` in ``app/screening/store.py``): it names exactly what was
    read or changed without putting any of it in the trail.
    """
    append(
        session,
        action=action,
        actor=actor,
        clinic_id=row.clinic_id,
        target_type="screening",
        target_id=row.id,
        target_sha256=target_sha256,
        request_id=request_id,
        ruleset_sha256=row.rule_pack_sha256,
        detail=detail,
    )


def record_screenings_listed(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    screening_ids: Sequence[uuid.UUID],
    actor: Actor,
    request_id: str | None,
    via: str | None = None,
) -> None:
    """Append the one ``screening.listed`` event of a list page, naming every screening shown.

    ``via`` names the screen that listed them when it is not the API (the review queue).
    """
    detail: dict[str, Any] = {} if via is None else {"via": via}
    detail |= {"count": len(screening_ids), "screening_ids": [str(i) for i in screening_ids]}
    append(
        session,
        action="screening.listed",
        actor=actor,
        clinic_id=clinic_id,
        target_type="screening",
        request_id=request_id,
        detail=detail,
    )
