"""verify_chain_parallel(): verify seq ranges of the audit chain in worker processes.

A range depends on the rest of the chain only through the stored hash of the event before
it, which the previous range recomputes; so ranges are verified independently and the first
problem of the first failing range, in seq order, is the one a single walk would report.
Recomputing a million hashes and decoding a million rows is CPU-bound in Python; worker
processes (each with its own read-only connection) make it scale with cores.
"""

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any, cast

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app import crypto
from app.audit import canonical, verify
from app.audit.checkpoint import Checkpoint
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import AuditEvent, AuditHead

__all__ = ["RANGE_SIZE", "verify_chain_parallel"]

RANGE_SIZE = 50_000
ContentDigest = Callable[[crypto.KeyRing, Any], tuple[str, dict[str, Any]]]
"""``app.screening.store.content_digest``: a stored screening's digest and result."""
_worker: dict[str, object] = {}


def _init_worker(database_url: str, key_spec: str | None, content_digest: ContentDigest) -> None:
    _worker["engine"] = make_engine(database_url, read_only=True)
    _worker["screenings"] = _screenings(key_spec, content_digest)
    _worker["keyring"] = _keyring(key_spec)


def _keyring(key_spec: str | None) -> crypto.KeyRing | None:
    return None if key_spec is None else crypto.KeyRing.parse(key_spec)


def _screenings(
    key_spec: str | None, content_digest: ContentDigest
) -> verify.ScreeningDigest | None:
    if key_spec is None:
        return None
    return partial(content_digest, crypto.KeyRing.parse(key_spec))


def _verify_range(first: int, last: int, checkpoint: Checkpoint | None) -> verify.RangeReport:
    engine = _worker["engine"]
    screenings = cast(verify.ScreeningDigest | None, _worker["screenings"])
    keyring = cast(crypto.KeyRing | None, _worker["keyring"])
    assert isinstance(engine, Engine)
    with make_sessionmaker(engine)() as session:
        return verify.verify_range(
            session,
            screenings=screenings,
            first=first,
            last=last,
            checkpoint=checkpoint,
            keyring=keyring,
        )


def _ranges(head_seq: int, size: int) -> Iterator[tuple[int, int]]:
    for first in range(1, head_seq + 1, size):
        yield first, min(first + size - 1, head_seq)


def verify_chain_parallel(
    database_url: str,
    *,
    key_spec: str | None,
    content_digest: ContentDigest,
    workers: int,
    checkpoint: Checkpoint | None = None,
    checkpoint_key: bytes | None = None,
    progress: verify.Progress | None = None,
    range_size: int = RANGE_SIZE,
) -> verify.VerifyReport:
    """Verify the chain like :func:`verify.verify_chain`, ``workers`` ranges at a time.

    ``key_spec`` is the ``SCREENING_DATA_KEY`` value (a key ring cannot be pickled); ``None``
    skips the screening digests. ``content_digest`` (``app.screening.store.content_digest``,
    picklable) recomputes a stored screening's digest with the key ring. The head, the tail
    and the checkpoint are checked here, in one read-only session, after the ranges; the
    report matches a sequential verification.
    A chain of at most two ranges, or ``workers`` < 2, is verified in this process.
    """
    engine = make_engine(database_url, read_only=True)
    try:
        with make_sessionmaker(engine)() as session:
            head_seq, head_hash = session.execute(
                select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
            ).one()
            if workers < 2 or head_seq <= 2 * range_size:
                return verify.verify_chain(
                    session,
                    screenings=_screenings(key_spec, content_digest),
                    keyring=_keyring(key_spec),
                    checkpoint=checkpoint,
                    checkpoint_key=checkpoint_key,
                    progress=progress,
                )
            # The ends of the chain (head, truncation, checkpoint, events beyond the head)
            # are checked by the sequential code over an empty walk from the last range.
            tail = _verified_ranges(
                session,
                database_url,
                (key_spec, content_digest),
                workers,
                checkpoint,
                head_seq,
                range_size,
                progress,
            )
            report = verify.verify_tail(
                session,
                head_seq=head_seq,
                head_hash=head_hash,
                last=tail,
                checkpoint=checkpoint,
                checkpoint_key=checkpoint_key,
            )
    finally:
        engine.dispose()
    return report


def _gap(session: Session, report: verify.RangeReport, head_seq: int) -> verify.RangeReport:
    """A range ended early: a gap before later events, or (none later) a truncated tail.

    Worded as the sequential walk words it; a truncated tail is left to ``verify_tail``.
    """
    after = report.reached
    later = session.scalar(select(func.min(AuditEvent.seq)).where(AuditEvent.seq > after))
    if later is None or later > head_seq:
        return report
    problem = f"events {after + 1}..{later - 1} are missing (deleted or renumbered)"
    return replace(report, first_bad_seq=after + 1, problem=problem)


def _verified_ranges(
    session: Session,
    database_url: str,
    keys: tuple[str | None, ContentDigest],
    workers: int,
    checkpoint: Checkpoint | None,
    head_seq: int,
    range_size: int,
    progress: verify.Progress | None,
) -> verify.RangeReport:
    ranges = list(_ranges(head_seq, range_size))
    context = multiprocessing.get_context("spawn")
    checked = 0
    last = verify.RangeReport(0, 0, 0, None, None, canonical.GENESIS_HASH, 0)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(database_url, *keys)
    ) as pool:
        futures = [pool.submit(_verify_range, a, b, checkpoint) for a, b in ranges]
        try:
            for future in futures:  # in seq order: the first bad range wins
                report = future.result()
                checked += report.screenings_checked
                last = replace(report, screenings_checked=checked)
                if report.reached != report.last and report.problem is None:
                    last = _gap(session, last, head_seq)
                if last.problem is not None or last.reached != last.last:
                    break
                if progress is not None:
                    progress(report.last, head_seq)
        finally:
            for future in futures:
                future.cancel()
    return last
