"""Replay a clinic's stored screenings under a candidate pack; keep the reports (no PHI).

Contracts: never commits. Screenings are read in keyset pages of ``BATCH`` rows ordered by
(created_at, id), with their flags per page, so memory stays constant whatever the number
of screenings; only the answers are decrypted (never the subject), and only in memory.
Running an analysis is an audit event (who, clinic, candidate hash, range, counts) and its
report (counts and screening ids) is stored for the admin pages.
"""

import json
import multiprocessing
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.crypto import KeyRing, field_aad
from app.db.models import ImpactReport, Screening, ScreeningFlag
from app.engine import Ruleset, ruleset_from_document
from app.rulepack.impact import ChangedScreening, Impact, RuleCounts, StoredScreening

BATCH = 2000
IMPACT_ANALYZED = "rule_pack.impact_analyzed"


@dataclass(frozen=True, slots=True)
class Period:
    """The as-of dates replayed, both ends inclusive; None: unbounded."""

    since: date | None = None
    until: date | None = None

    def describe(self) -> str:
        """The period in words, for reports."""
        if self.since is None and self.until is None:
            return "all screenings"
        return f"{self.since or 'the first screening'} to {self.until or 'today'}"


def _filters(clinic_id: uuid.UUID, period: Period) -> list[Any]:
    filters: list[Any] = [Screening.clinic_id == clinic_id]
    if period.since is not None:
        filters.append(Screening.as_of_date >= period.since)
    if period.until is not None:
        filters.append(Screening.as_of_date <= period.until)
    return filters


def count_screenings(session: Session, *, clinic_id: uuid.UUID, period: Period) -> int:
    """How many stored screenings of the clinic fall in the period."""
    query = select(func.count()).select_from(Screening).where(*_filters(clinic_id, period))
    return int(session.scalar(query) or 0)


def stored_screenings(
    session: Session,
    *,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    period: Period,
    batch: int = BATCH,
) -> Iterator[list[StoredScreening]]:
    """Yield the clinic's screenings in the period, a page at a time, oldest first."""
    columns = (
        Screening.id,
        Screening.created_at,
        Screening.as_of_date,
        Screening.decision,
        Screening.key_id,
        Screening.answers_ct,
    )
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        query = select(*columns).where(*_filters(clinic_id, period))
        if after is not None:
            created_at, last_id = after
            query = query.where(
                or_(
                    Screening.created_at > created_at,
                    and_(Screening.created_at == created_at, Screening.id > last_id),
                )
            )
        # Core rows, not ORM ones: the ORM's per-row loading showed in profiles.
        rows = (
            session.connection()
            .execute(query.order_by(Screening.created_at, Screening.id).limit(batch))
            .all()
        )
        if not rows:
            return
        statuses = _statuses(session, [row.id for row in rows])
        yield [
            StoredScreening(
                id=str(row.id),
                as_of=row.as_of_date,
                answers=json.loads(
                    keyring.decrypt(
                        row.key_id, row.answers_ct, field_aad("screening", "answers_ct", row.id)
                    )
                ),
                decision=row.decision.value,
                statuses=statuses.get(row.id, {}),
            )
            for row in rows
        ]
        after = (rows[-1].created_at, rows[-1].id)


def _statuses(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, str]]:
    """The fired and unknown rules of each screening (every other rule was clear)."""
    found: dict[uuid.UUID, dict[str, str]] = {}
    rows = session.connection().execute(
        select(ScreeningFlag.screening_id, ScreeningFlag.rule, ScreeningFlag.status).where(
            ScreeningFlag.screening_id.in_(ids)
        )
    )
    for screening_id, rule, status in rows:
        found.setdefault(screening_id, {})[rule] = status.value
    return found


def replay(
    session: Session,
    *,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    candidate: Ruleset,
    period: Period,
    advance: Callable[[int], None] | None = None,
    keep: int = 500,
    workers: int = 1,
) -> Impact:
    """Re-evaluate every stored screening of the period under ``candidate``; return the totals.

    ``advance`` is called with the size of each page (a progress bar); the first ``keep``
    changed screenings are listed by id, all of them counted. With ``workers`` > 1, pages are
    evaluated in that many worker processes (spawned, at most two pages each in flight, so
    memory stays bounded) while this process reads and decrypts the next ones; the result is
    the same, changed screenings in the same order.
    """
    impact = Impact(candidate, keep=keep)
    pages = stored_screenings(session, keyring=keyring, clinic_id=clinic_id, period=period)
    if workers <= 1:
        for page in pages:
            for screening in page:
                impact.add(screening)
            if advance is not None:
                advance(len(page))
        return impact
    context = multiprocessing.get_context("spawn")  # never fork a process holding connections
    init = (candidate.canonical_json, candidate.sha256, keep)
    with ProcessPoolExecutor(workers, context, _start_worker, init) as pool:
        pending: deque[Future[_Totals]] = deque()
        for page in pages:
            pending.append(pool.submit(_replay_page, page))
            if len(pending) >= 2 * workers:
                _merge(impact, pending.popleft().result(), advance)
        while pending:
            _merge(impact, pending.popleft().result(), advance)
    return impact


_Totals = tuple[
    int,
    dict[tuple[str, str], int],
    dict[str, tuple[int, int, int]],
    list[ChangedScreening],
    int,
    dict[str, int],
]
_WORKER: dict[str, Any] = {}


def _start_worker(canonical_json: bytes, sha256: str, keep: int) -> None:
    """A worker's candidate pack, rebuilt from its canonical content (and hash-checked)."""
    candidate = ruleset_from_document(json.loads(canonical_json))
    if candidate.sha256 != sha256:
        raise RuntimeError(f"candidate pack rebuilds to {candidate.sha256}, not {sha256}")
    _WORKER.update(candidate=candidate, keep=keep)


def _replay_page(page: list[StoredScreening]) -> _Totals:
    impact = Impact(_WORKER["candidate"], keep=_WORKER["keep"])
    for screening in page:
        impact.add(screening)
    rules = {
        r: (c.newly_fired, c.newly_unknown, c.no_longer_fired) for r, c in impact.rules.items()
    }
    return (impact.total, dict(impact.matrix), rules, impact.changed, impact.changed_total,
            dict(impact.rejected))  # fmt: skip


def _merge(impact: Impact, totals: _Totals, advance: Callable[[int], None] | None) -> None:
    total, matrix, rules, changed, changed_total, rejected = totals
    impact.total += total
    impact.matrix.update(matrix)
    for rule, (fired, unknown, no_longer) in rules.items():
        counts = impact.rules.setdefault(rule, RuleCounts())
        counts.newly_fired += fired
        counts.newly_unknown += unknown
        counts.no_longer_fired += no_longer
    impact.changed.extend(changed[: max(0, impact.keep - len(impact.changed))])
    impact.changed_total += changed_total
    impact.rejected.update(rejected)
    if advance is not None:
        advance(total)


def record(
    session: Session,
    *,
    clinic_id: uuid.UUID,
    impact: Impact,
    period: Period,
    active_sha256: str | None,
    actor: audit_service.Actor,
    now: datetime,
) -> uuid.UUID:
    """Store the report and append the audit event of an analysis; return the report's id."""
    report = impact.to_dict() | {"period": period.describe(), "active_sha256": active_sha256}
    row = ImpactReport(
        id=uuid.uuid4(),
        clinic_id=clinic_id,
        active_sha256=active_sha256,
        candidate_sha256=impact.candidate.sha256,
        since_date=period.since,
        until_date=period.until,
        actor_id=actor.id,
        report=report,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit_service.append(
        session,
        action=IMPACT_ANALYZED,
        actor=actor,
        clinic_id=clinic_id,
        target_type="rule_pack",
        target_id=impact.candidate.sha256,
        ruleset_sha256=active_sha256,
        detail={
            "candidate_sha256": impact.candidate.sha256,
            "since": period.since.isoformat() if period.since else None,
            "until": period.until.isoformat() if period.until else None,
            "screenings": impact.total,
            "changed": impact.changed_total,
            "rejected": impact.rejected_total,
            "report_id": str(row.id),
        },
    )
    return row.id


def latest_reports(
    session: Session, *, clinic_id: uuid.UUID, limit: int = 10
) -> list[ImpactReport]:
    """The clinic's most recent impact reports, newest first."""
    return list(
        session.scalars(
            select(ImpactReport)
            .where(ImpactReport.clinic_id == clinic_id)
            .order_by(ImpactReport.created_at.desc(), ImpactReport.id)
            .limit(limit)
        )
    )


def get_report(
    session: Session, *, clinic_id: uuid.UUID, report_id: uuid.UUID
) -> ImpactReport | None:
    """One of the clinic's stored reports (None for another clinic's or an unknown id)."""
    row = session.get(ImpactReport, report_id)
    return row if row is not None and row.clinic_id == clinic_id else None
