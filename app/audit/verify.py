"""verify_chain(): recompute the audit hash chain and every referenced screening's digest.

Checks, in ``seq`` order, stopping at the first problem (reported with its ``seq``):

1. continuity: seq runs 1, 2, 3, ... (a gap means deleted events);
2. each event's hash recomputed from its stored fields and ``prev_hash`` (an altered field,
   or a row moved to another seq, since ``seq`` is hashed);
3. each ``prev_hash`` equals the previous event's hash (an event rewritten *with* a
   recomputed hash breaks the link to its successor);
4. the stored rows each event vouches for (``verify_rows``): a screening's digest and the
   columns derived from its result (``has_exclude``, ``screening_flag``), a review's digest,
   a rule pack's content hash;
5. the ``audit_head`` row matches the last event (tail deleted, head left behind);
6. with a signed checkpoint: the chain reaches the checkpoint's seq with its hash (tail
   truncated *and* head moved back, or the whole chain recomputed);
7. rows no event names (``verify_rows.check_unreferenced``): every rule pack's content hash,
   and no more reviews than recorded ones.

Events are streamed in keyset batches of ``BATCH_SIZE`` so memory stays flat, and screenings
are decrypted once per batch, not once per event.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, Enum, String, cast, func, literal, select, type_coerce
from sqlalchemy.orm import Session

from app import crypto
from app.audit import canonical
from app.audit.checkpoint import Checkpoint
from app.audit.service import HASHED_COLUMNS, hashed_fields
from app.audit.verify_rows import ChainBroken, ScreeningDigest, StoredRows, check_unreferenced
from app.db.models import AuditEvent, AuditHead

__all__ = [
    "BATCH_SIZE",
    "Progress",
    "RangeReport",
    "ScreeningDigest",
    "VerifyReport",
    "verify_chain",
    "verify_range",
    "verify_tail",
]

BATCH_SIZE = 10_000

Progress = Callable[[int, int], None]
"""Called after each batch with ``(events checked, events expected)``."""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Outcome of :func:`verify_chain`."""

    ok: bool
    count: int
    head_seq: int
    first_bad_seq: int | None = None
    problem: str | None = None
    screenings_checked: int = 0
    checkpoint_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (for ``--json``)."""
        return asdict(self)


def _event_columns(dialect: str) -> list[ColumnElement[Any]]:
    # Core columns, enums read as plain strings: the enum and ORM row processing would
    # otherwise cost about a third of a million-event verify. Enum values are their strings.
    # The database renders occurred_at (and on PostgreSQL clinic_id) in canonical text form,
    # in C, instead of the driver building datetimes and UUIDs only for us to format them.
    table = AuditEvent.__table__
    columns: list[ColumnElement[Any]] = []
    for name in (*HASHED_COLUMNS, "prev_hash", "hash"):
        column = table.c[name]
        if name == "occurred_at":
            columns.append(_canonical_time(column, dialect).label(name))
        elif name == "clinic_id" and dialect == "postgresql":
            columns.append(cast(column, String).label(name))
        elif isinstance(column.type, Enum):
            columns.append(type_coerce(column, String).label(name))
        else:
            columns.append(column)
    return columns


def _canonical_time(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``, exactly :func:`canonical.format_datetime`'s output."""
    if dialect == "postgresql":
        utc = func.timezone("UTC", column)
        return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    # SQLite stores UTC as "YYYY-MM-DD HH:MM:SS.ffffff" (SQLAlchemy's format, always 6 digits).
    return func.replace(type_coerce(column, String), " ", "T") + literal("Z")


def _batches(
    session: Session, batch_size: int, head_seq: int, after: int = 0
) -> Iterator[Sequence[Sequence[Any]]]:
    # Bounded by the head read first: events appended while we verify (PostgreSQL's READ
    # COMMITTED sees them) belong to a later verification, not to a false "head mismatch".
    seq = AuditEvent.__table__.c.seq
    dialect = session.get_bind().dialect.name
    query = select(*_event_columns(dialect)).where(seq <= head_seq).order_by(seq)
    last = after
    while True:
        rows = session.execute(query.where(seq > last).limit(batch_size)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


class _Walker:
    """Walks the chain in order, keeping the last seq and hash seen."""

    def __init__(
        self,
        stored: StoredRows | None,
        checkpoint: Checkpoint | None,
        last_seq: int = 0,
        last_hash: str = canonical.GENESIS_HASH,
    ) -> None:
        self.stored = stored
        self.checkpoint = checkpoint
        self.last_seq = last_seq
        self.last_hash = last_hash

    def batch(self, rows: Sequence[Sequence[Any]]) -> None:
        if self.stored is not None:
            self.stored.load(rows)
        for row in rows:
            self.event(row)

    def event(self, row: Sequence[Any]) -> None:
        *values, prev_hash, stored_hash = row
        seq: int = values[0]
        if seq != self.last_seq + 1:
            raise ChainBroken(
                self.last_seq + 1,
                f"events {self.last_seq + 1}..{seq - 1} are missing (deleted or renumbered)",
            )
        if canonical.chain_hash(prev_hash, hashed_fields(values), checked=False) != stored_hash:
            raise ChainBroken(seq, "hash does not match the stored fields (event altered)")
        if prev_hash != self.last_hash:
            broken = max(seq - 1, 1)
            raise ChainBroken(
                broken,
                f"prev_hash of seq {seq} does not match the hash of seq {seq - 1} "
                "(an event was rewritten with a recomputed hash)",
            )
        if self.stored is not None:
            self.stored.check(seq, values)
        cp = self.checkpoint
        if cp is not None and seq == cp.seq and stored_hash != cp.hash:
            raise ChainBroken(seq, "hash differs from the signed checkpoint (chain rewritten)")
        self.last_seq, self.last_hash = seq, stored_hash

    def finish(self, head_seq: int, head_hash: str) -> None:
        if (head_seq, head_hash) != (self.last_seq, self.last_hash):
            raise ChainBroken(
                self.last_seq + 1 if head_seq > self.last_seq else head_seq,
                f"audit_head (seq {head_seq}) does not match the last event (seq "
                f"{self.last_seq}): events after seq {self.last_seq} deleted or head altered",
            )
        cp = self.checkpoint
        if cp is not None and cp.seq > self.last_seq:
            raise ChainBroken(
                self.last_seq + 1,
                f"chain ends at seq {self.last_seq} but the signed checkpoint records seq "
                f"{cp.seq}: the tail was truncated",
            )
        if cp is not None and cp.seq == 0 and cp.hash != canonical.GENESIS_HASH:
            raise ChainBroken(None, "checkpoint of an empty chain has a non-genesis hash")


def _check_nothing_beyond_head(session: Session) -> None:
    # Max seq first, then the head: a concurrent append commits its event and the head
    # together, so legitimately max(seq) <= head; more means the head was moved back.
    max_seq = session.scalar(select(func.max(AuditEvent.seq))) or 0
    head_now = session.scalar(select(AuditHead.seq).where(AuditHead.id == 1)) or 0
    if max_seq > head_now:
        raise ChainBroken(
            head_now + 1,
            f"events up to seq {max_seq} exist beyond audit_head (seq {head_now}): head moved back",
        )


@dataclass(frozen=True, slots=True)
class RangeReport:
    """Outcome of :func:`verify_range`: how far it got, and its first problem, if any."""

    first: int
    last: int
    reached: int
    first_bad_seq: int | None
    problem: str | None
    last_hash: str
    screenings_checked: int


def verify_range(
    session: Session,
    *,
    screenings: ScreeningDigest | None,
    first: int,
    last: int,
    checkpoint: Checkpoint | None = None,
    batch_size: int = BATCH_SIZE,
    keyring: crypto.KeyRing | None = None,
) -> RangeReport:
    """Verify events ``first..last`` exactly as :func:`verify_chain` would, given the rest.

    The walk starts from the *stored* hash of event ``first - 1`` (genesis for 1); that hash
    is itself recomputed by whoever verifies the range before, so ranges verified
    independently and taken in order find the same first problem as one walk. ``reached``
    below ``last`` means the range's tail is missing: the caller reports it (a gap before
    the next range, or a truncated chain for the last one).
    """
    seed = canonical.GENESIS_HASH
    if first > 1:
        seed = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == first - 1)) or ""
    stored = None if screenings is None else StoredRows(session, screenings, keyring)
    walker = _Walker(stored, checkpoint, last_seq=first - 1, last_hash=seed)
    bad: tuple[int | None, str | None] = (None, None)
    try:
        for rows in _batches(session, batch_size, last, after=first - 1):
            walker.batch(rows)
    except ChainBroken as broken:
        bad = (broken.seq, broken.problem)
    checked = 0 if stored is None else stored.screenings_checked
    return RangeReport(first, last, walker.last_seq, *bad, walker.last_hash, checked)


def _check_signature(checkpoint: Checkpoint | None, key: bytes | None) -> None:
    if checkpoint is not None and (key is None or not checkpoint.is_authentic(key)):
        raise ChainBroken(None, "checkpoint signature does not verify (wrong key or edited)")


def verify_tail(
    session: Session,
    *,
    head_seq: int,
    head_hash: str,
    last: RangeReport,
    checkpoint: Checkpoint | None = None,
    checkpoint_key: bytes | None = None,
) -> VerifyReport:
    """Finish a range-wise verification whose ranges ended with ``last`` (first failure or end).

    Checks, in :func:`verify_chain`'s order: the checkpoint signature, the range's problem,
    then the head, the checkpoint's seq and hash, and events beyond the head.
    """
    walker = _Walker(None, checkpoint, last_seq=last.reached, last_hash=last.last_hash)
    result: dict[str, Any] = {"head_seq": head_seq, "count": last.reached}
    result["screenings_checked"] = last.screenings_checked
    if checkpoint is not None:
        result["checkpoint_seq"] = checkpoint.seq
    try:
        _check_signature(checkpoint, checkpoint_key)
        if last.problem is not None:
            result["count"] = max((last.first_bad_seq or 1) - 1, 0)
            raise ChainBroken(last.first_bad_seq, last.problem)
        walker.finish(head_seq, head_hash)
        _check_nothing_beyond_head(session)
        check_unreferenced(session)
    except ChainBroken as broken:
        result.update(ok=False, first_bad_seq=broken.seq, problem=broken.problem)
    else:
        result["ok"] = True
    return VerifyReport(**result)


def verify_chain(
    session: Session,
    *,
    screenings: ScreeningDigest | None,
    checkpoint: Checkpoint | None = None,
    checkpoint_key: bytes | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    keyring: crypto.KeyRing | None = None,
) -> VerifyReport:
    """Verify the whole chain; stop at and report the first problem.

    Args:
        session: A session; only read.
        screenings: Recomputes a stored screening's digest; ``None`` skips that check.
        checkpoint: A signed checkpoint the chain must still contain.
        checkpoint_key: The HMAC key the checkpoint must verify under (required with it).
        progress: Called after each batch with ``(checked, expected)``.
        batch_size: Events per query.
        keyring: Decrypts results and review notes, so the columns derived from a result
            (``has_exclude``, ``screening_flag``) and each review's digest are checked too.

    Returns:
        ``ok`` with the number of events checked, or the first bad seq and what is wrong.
    """
    head_seq, head_hash = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
    ).one()
    stored = None if screenings is None else StoredRows(session, screenings, keyring)
    walker = _Walker(stored, checkpoint)
    result: dict[str, Any] = {"head_seq": head_seq}
    if checkpoint is not None:
        result["checkpoint_seq"] = checkpoint.seq
    try:
        _check_signature(checkpoint, checkpoint_key)
        for rows in _batches(session, batch_size, head_seq):
            walker.batch(rows)
            if progress is not None:
                progress(walker.last_seq, max(head_seq, walker.last_seq))
        walker.finish(head_seq, head_hash)
        _check_nothing_beyond_head(session)
        check_unreferenced(session)
    except ChainBroken as broken:
        result.update(ok=False, first_bad_seq=broken.seq, problem=broken.problem)
    else:
        result["ok"] = True
    result["count"] = walker.last_seq
    result["screenings_checked"] = 0 if stored is None else stored.screenings_checked
    return VerifyReport(**result)
