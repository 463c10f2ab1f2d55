"""Replay a clinic's stored screenings under a candidate pack; keep the reports (no PHI).

Contracts: never commits. Screenings are read in keyset pages of ``BATCH`` rows ordered by
(created_at, id), with their flags per page, so memory stays constant whatever the number
of screenings; only the answers are decrypted (never the subject), and only in memory.
Running an analysis is an audit event (who, clinic, candidate hash, range, counts) and its
report (counts and screening ids) is stored for the admin pages.
"""

import contextlib
import pickle
import subprocess
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.crypto import KeyRing
from app.db.models import Screening, ScreeningFlag
from app.db.policy_models import ImpactReport
from app.engine import Ruleset
from app.rulepack import worker
from app.rulepack.impact import Impact, RuleCounts, StoredScreening
from app.rulepack.worker import RawScreening

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


def raw_pages(
    session: Session, *, clinic_id: uuid.UUID, period: Period, batch: int = BATCH
) -> Iterator[list[RawScreening]]:
    """Yield the clinic's screenings in the period, a page at a time, oldest first.

    Answers stay encrypted here: ``worker.decode`` decrypts them where they are replayed.
    """
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
            # The plain bound lets the (clinic_id, created_at, id) index seek to the page;
            # without it SQLite scans the clinic's rows from the start on every page.
            query = query.where(
                Screening.created_at >= created_at,
                or_(
                    Screening.created_at > created_at,
                    and_(Screening.created_at == created_at, Screening.id > last_id),
                ),
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
            RawScreening(
                str(row.id),
                row.as_of_date,
                row.decision.value,
                row.key_id,
                row.answers_ct,
                statuses.get(row.id, {}),
            )
            for row in rows
        ]
        after = (rows[-1].created_at, rows[-1].id)


def stored_screenings(
    session: Session, *, keyring: KeyRing, clinic_id: uuid.UUID, period: Period
) -> Iterator[list[StoredScreening]]:
    """The clinic's screenings in the period, a page at a time, answers decrypted."""
    for page in raw_pages(session, clinic_id=clinic_id, period=period):
        yield [worker.decode(keyring, raw) for raw in page]


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
    key_spec: str | None = None,
) -> Impact:
    """Re-evaluate every stored screening of the period under ``candidate``; return the totals.

    ``advance`` is called with the size of each page (a progress bar); the first ``keep``
    changed screenings are listed by id, all of them counted. With ``workers`` > 1 (and the
    data key ``key_spec``), pages are decrypted and evaluated in that many worker processes
    (``app/rulepack/worker.py``, at most two pages each in flight) while this process reads
    the next ones; the result is the same, changed screenings in the same order.
    """
    impact = Impact(candidate, keep=keep)
    pages = raw_pages(session, clinic_id=clinic_id, period=period)
    if workers <= 1 or key_spec is None:
        for page in pages:
            for raw in page:
                impact.add(worker.decode(keyring, raw))
            if advance is not None:
                advance(len(page))
        return impact
    with _Pool(workers, (candidate.canonical_json, candidate.sha256, keep, key_spec)) as pool:
        for totals in pool.map(pages):
            _merge(impact, totals, advance)
    return impact


class _Pool:
    """Worker processes fed pages round-robin, answers read back in the order sent."""

    def __init__(self, size: int, init: tuple[bytes, str, int, str]) -> None:
        command = [sys.executable, "-c", "from app.rulepack.worker import main; main()"]
        self._workers = [
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(size)
        ]
        for process in self._workers:
            self._send(process, init)

    @staticmethod
    def _send(process: subprocess.Popen[bytes], value: object) -> None:
        assert process.stdin is not None
        pickle.dump(value, process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        process.stdin.flush()

    @staticmethod
    def _receive(process: subprocess.Popen[bytes]) -> worker.Totals:
        assert process.stdout is not None
        totals: worker.Totals = pickle.load(process.stdout)
        return totals

    def map(self, pages: Iterator[list[RawScreening]]) -> Iterator[worker.Totals]:
        """Each page's totals, in page order; at most two pages per worker in flight."""
        in_flight: deque[subprocess.Popen[bytes]] = deque()
        for number, page in enumerate(pages):
            if len(in_flight) >= 2 * len(self._workers):
                yield self._receive(in_flight.popleft())
            process = self._workers[number % len(self._workers)]
            self._send(process, page)
            in_flight.append(process)
        while in_flight:
            yield self._receive(in_flight.popleft())

    def __enter__(self) -> "_Pool":
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._workers:
            with contextlib.suppress(OSError):  # a worker already gone: its status says why
                self._send(process, None)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
            if process.wait(timeout=30) != 0 and exc[0] is None:
                raise RuntimeError(f"an impact worker exited with status {process.returncode}")


def _merge(impact: Impact, totals: worker.Totals, advance: Callable[[int], None] | None) -> None:
    impact.total += totals.total
    impact.matrix.update(totals.matrix)
    for rule, (fired, unknown, no_longer) in totals.rules.items():
        counts = impact.rules.setdefault(rule, RuleCounts())
        counts.newly_fired += fired
        counts.newly_unknown += unknown
        counts.no_longer_fired += no_longer
    impact.changed.extend(totals.changed[: max(0, impact.keep - len(impact.changed))])
    impact.changed_total += totals.changed_total
    impact.rejected.update(totals.rejected)
    if advance is not None:
        advance(totals.total)


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
