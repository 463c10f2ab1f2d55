"""The stored rows the audit chain vouches for, checked while ``verify`` walks the chain.

For each event, in ``seq`` order (the first problem is reported at that event's seq):

- a screening an event names with a ``target_sha256``: its decrypted subject, answers and
  result (and clinic, as-of date, decision and rule pack) recomputed into the digest; and
  every column derived from the stored result checked against it: ``has_exclude`` (a fired
  exclude flag), the ``screening_flag`` rows (one per result flag: rule, severity, status;
  none edited, deleted or added), and at its ``screening.created`` event the ``source``;
- a review a ``review.recorded`` event names (``detail.review_id``): the row must exist and
  match the event's ``review_sha256`` (``canonical.review_content_digest``: disposition,
  decrypted note, override reason, reviewer, screening, time); events written before that
  digest existed are checked on disposition and override reason;
- a rule pack a ``rule_pack.loaded`` event names: its stored content must hash to its sha256.

After the walk, :func:`check_unreferenced` finds what no event vouches for: a stored rule pack
whose content does not hash to its sha256, and review rows beyond the recorded reviews.
"""

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from app import crypto
from app.audit import canonical
from app.db.models import AuditEvent, Review, RulePack, Screening, ScreeningFlag

__all__ = ["ChainBroken", "ScreeningDigest", "StoredRows", "check_unreferenced"]

_CHUNK = 500
_CACHE_LIMIT = 200_000
# Positions of HASHED_COLUMNS in an event row (app.audit.service).
_ACTION, _TARGET_TYPE, _TARGET_ID, _TARGET_SHA, _OUTCOME, _DETAIL = 5, 6, 7, 8, 9, 12

ScreeningDigest = Callable[[Any], tuple[str, dict[str, Any]]]
"""A stored screening row's content digest and decrypted result: ``app.screening.store.
content_digest`` with a key ring, passed in (audit sits below screening). Raises
crypto.DecryptError, or ValueError."""


class ChainBroken(Exception):
    """The first problem found: the event ``seq`` it is reported at (or None) and what."""

    def __init__(self, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


_SCREENING_COLUMNS = (
    Screening.id,
    Screening.clinic_id,
    Screening.as_of_date,
    Screening.decision,
    Screening.rule_pack_sha256,
    Screening.key_id,
    Screening.subject_ct,
    Screening.answers_ct,
    Screening.result_ct,
    Screening.has_exclude,
    type_coerce(Screening.source, String).label("source"),
)
_REVIEW_COLUMNS = (
    Review.id,
    Review.screening_id,
    Review.clinic_id,
    Review.reviewer_id,
    Review.disposition,
    Review.override_reason,
    Review.note_ct,
    Review.key_id,
    Review.created_at,
)


def _chunks(keys: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


def _result_flags(result: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["rule"], f["severity"], f["status"]) for f in result["flags"]}


class _Screenings:
    """Per screening: its digest and source, or ``!problem``; loaded a batch at a time."""

    def __init__(self, session: Session, digest: ScreeningDigest, keyring: crypto.KeyRing | None):
        self._session = session
        self._digest_of = digest
        self._keyring = keyring
        self._cache: dict[str, tuple[str, str]] = {}
        self.checked = 0

    def load(self, target_ids: set[str]) -> None:
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        wanted: dict[uuid.UUID, str] = {}
        for target_id in target_ids - self._cache.keys():
            try:
                wanted[uuid.UUID(target_id)] = target_id
            except ValueError:
                self._cache[target_id] = ("!target id is not a screening id", "")
        for chunk in _chunks(list(wanted)):
            # Columns, not entities: the identity map must never stand in for stored bytes.
            rows = self._session.execute(select(*_SCREENING_COLUMNS).where(Screening.id.in_(chunk)))
            flags = self._flags(chunk)
            for row in rows:
                self._cache[wanted.pop(row.id)] = (self._state(row, flags), row.source)
        for target_id in wanted.values():
            self._cache[target_id] = ("!referenced screening is missing (deleted?)", "")

    def _flags(self, chunk: list[uuid.UUID]) -> dict[uuid.UUID, set[tuple[str, str, str]]]:
        found: dict[uuid.UUID, set[tuple[str, str, str]]] = {key: set() for key in chunk}
        query = select(
            ScreeningFlag.screening_id,
            ScreeningFlag.rule,
            type_coerce(ScreeningFlag.severity, String),
            type_coerce(ScreeningFlag.status, String),
        ).where(ScreeningFlag.screening_id.in_(chunk))
        for screening_id, rule, severity, status in self._session.execute(query):
            found[screening_id].add((rule, severity, status))
        return found

    def _state(self, row: Any, flags: dict[uuid.UUID, set[tuple[str, str, str]]]) -> str:
        self.checked += 1
        try:
            digest, result = self._digest_of(row)
            if self._keyring is None:
                return digest
            expected = _result_flags(result)
        except crypto.DecryptError:
            return "!stored screening ciphertext does not decrypt (altered, moved or key missing)"
        except (ValueError, KeyError, TypeError):
            return "!stored screening plaintext is not JSON of a result"
        has_exclude = any(sev == "exclude" and status == "fired" for _, sev, status in expected)
        if bool(row.has_exclude) != has_exclude:
            return "!has_exclude does not match the stored result's flags (column altered)"
        if flags[row.id] != expected:
            return (
                "!screening_flag rows do not match the stored result's flags "
                "(a flag row edited, deleted or added)"
            )
        return digest

    def check(self, seq: int, event: Sequence[Any]) -> None:
        target_id = event[_TARGET_ID]
        state, source = self._cache[target_id]
        if state.startswith("!"):
            raise ChainBroken(seq, f"screening {target_id}: {state[1:]}")
        if state != event[_TARGET_SHA]:
            raise ChainBroken(
                seq,
                f"screening {target_id}: stored content does not match the digest recorded by "
                "this event (answers, result, subject or metadata altered)",
            )
        detail = event[_DETAIL] or {}
        if event[_ACTION] == "screening.created" and detail.get("source", source) != source:
            raise ChainBroken(seq, f"screening {target_id}: source differs from its creation event")


class _Reviews:
    """Per review a ``review.recorded`` event names: its digest, or ``!problem``."""

    def __init__(self, session: Session, keyring: crypto.KeyRing | None) -> None:
        self._session = session
        self._keyring = keyring
        self._rows: dict[str, Any] = {}

    def load(self, review_ids: set[str]) -> None:
        self._rows.clear()
        wanted: dict[uuid.UUID, str] = {}
        for review_id in review_ids:
            try:
                wanted[uuid.UUID(review_id)] = review_id
            except ValueError:
                continue  # reported as missing by check
        for chunk in _chunks(list(wanted)):
            for row in self._session.execute(select(*_REVIEW_COLUMNS).where(Review.id.in_(chunk))):
                self._rows[wanted[row.id]] = row

    def check(self, seq: int, event: Sequence[Any]) -> None:
        detail = event[_DETAIL]
        review_id = str(detail["review_id"])
        row = self._rows.get(review_id)
        if row is None:
            raise ChainBroken(seq, f"review {review_id}: missing (deleted?)")
        if str(row.screening_id) != event[_TARGET_ID]:
            raise ChainBroken(seq, f"review {review_id}: moved to another screening")
        recorded = (detail.get("disposition"), detail.get("override_reason"))
        if (row.disposition, row.override_reason) != recorded:
            raise ChainBroken(seq, f"review {review_id}: disposition or override reason altered")
        expected = detail.get("review_sha256")
        if expected is not None and self._keyring is not None and self._digest(row) != expected:
            raise ChainBroken(
                seq,
                f"review {review_id}: stored review does not match the digest recorded by this "
                "event (note, reviewer, disposition, override reason or time altered)",
            )

    def _digest(self, row: Any) -> str:
        assert self._keyring is not None
        aad = crypto.field_aad("review", "note_ct", row.id)
        try:
            note = self._keyring.decrypt(row.key_id, bytes(row.note_ct), aad).decode()
        except (crypto.DecryptError, UnicodeDecodeError):
            return "!note does not decrypt"
        return canonical.review_content_digest(row, note=note)


def _pack_problem(session: Session, sha256: str) -> str | None:
    content = session.scalar(select(RulePack.content).where(RulePack.sha256 == sha256))
    if content is None:
        return f"rule pack {sha256}: missing (deleted?)"
    if hashlib.sha256(content.encode("utf-8")).hexdigest() != sha256:
        return f"rule pack {sha256}: stored content does not hash to its sha256 (altered)"
    return None


def _is_review(event: Sequence[Any]) -> bool:
    detail = event[_DETAIL]
    return (
        event[_ACTION] == "review.recorded"
        and event[_OUTCOME] == "success"
        and isinstance(detail, dict)
        and "review_id" in detail
    )


class StoredRows:
    """The stored screenings, flags, reviews and rule packs the events of a batch name."""

    def __init__(
        self, session: Session, digest: ScreeningDigest, keyring: crypto.KeyRing | None
    ) -> None:
        self._session = session
        self._screenings = _Screenings(session, digest, keyring)
        self._reviews = _Reviews(session, keyring)

    @property
    def screenings_checked(self) -> int:
        """How many stored screenings were decrypted and checked."""
        return self._screenings.checked

    def load(self, rows: Sequence[Sequence[Any]]) -> None:
        """Read the rows the batch's events name, a chunk at a time."""
        self._screenings.load(
            {r[_TARGET_ID] for r in rows if r[_TARGET_TYPE] == "screening" and r[_TARGET_SHA]}
        )
        self._reviews.load({str(r[_DETAIL]["review_id"]) for r in rows if _is_review(r)})

    def check(self, seq: int, event: Sequence[Any]) -> None:
        """Raise ChainBroken if a row this (hash-verified) event vouches for was altered."""
        if event[_TARGET_TYPE] == "screening" and event[_TARGET_SHA] is not None:
            self._screenings.check(seq, event)
        if _is_review(event):
            self._reviews.check(seq, event)
        if event[_ACTION] == "rule_pack.loaded" and event[_TARGET_ID] is not None:
            problem = _pack_problem(self._session, event[_TARGET_ID])
            if problem is not None:
                raise ChainBroken(seq, problem)


def check_unreferenced(session: Session) -> None:
    """Raise ChainBroken for stored rows no event vouches for (after a complete walk).

    Every stored rule pack must hash to its sha256 (packs stored before they were audited
    too), and there must be no more review rows than successful ``review.recorded`` events,
    nor screening rows than successful ``screening.created`` events (a forged screening that
    no event names). Rows are counted before their events, and every event is counted (not
    only up to the head verified): a row and its event commit together, so a row committed
    while verify runs never looks unrecorded.
    """
    for sha256, content in session.execute(select(RulePack.sha256, RulePack.content)):
        if hashlib.sha256(content.encode("utf-8")).hexdigest() != sha256:
            raise ChainBroken(
                None, f"rule pack {sha256}: stored content does not hash to its sha256 (altered)"
            )
    for table, action in ((Review, "review.recorded"), (Screening, "screening.created")):
        rows = session.scalar(select(func.count()).select_from(table)) or 0
        recorded = (
            session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.action == action,
                    type_coerce(AuditEvent.outcome, String) == "success",
                )
            )
            or 0
        )
        if rows > recorded:
            raise ChainBroken(
                None,
                f"{rows - recorded} {table.__tablename__} row(s) have no {action} event "
                "(inserted outside the service)",
            )
