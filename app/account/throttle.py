"""Sign-in throttling: growing delays per source address, and a cap on argon2id verifications.

Per account, failures are counted in the database (``account_service``: back-off shared by
every replica). Per source address they are counted here, in memory, because addresses are
the attacker's to choose: the table is bounded (``max_entries``; when full, the least
recently seen quarter is forgotten, never the whole table, so a flood of new addresses
cannot reset the counters of the addresses already delayed).

Neither is a lock: each failure past the free ones doubles the wait (capped), and once it
has passed the right password gets through. The account's cap is short (a minute), so an
attacker who knows a physician's email can delay, never lock out, their sign-in; the
source's cap is longer, since only the attacker's own address waits.
"""

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from app.errors import ServiceUnavailable

SOURCE_FREE_FAILURES = 10
SOURCE_MAX_DELAY = timedelta(minutes=5)
SOURCE_FORGET_AFTER = timedelta(hours=1)


def backoff(failures: int, *, free: int, cap: timedelta) -> timedelta:
    """The wait after ``failures`` failures: none for the first ``free``, then 1 s, 2 s, 4 s ...

    up to ``cap``.
    """
    if failures < free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - free, 30)), cap)


def seconds_until(until: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``until`` (at least 1): a ``Retry-After`` value."""
    return max(1, math.ceil((until - now).total_seconds()))


class SourceThrottle:
    """Failed sign-ins per source address, with the time before its next attempt.

    One per app, a component of its ``AppContext``; O(1) per call.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self._max = max_entries
        # address → (failures, last failure, next attempt allowed at); oldest first
        self._entries: OrderedDict[str, tuple[int, datetime, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def blocked_until(self, source: str, now: datetime) -> datetime | None:
        """When ``source`` may try again, if that is still in the future."""
        entry = self._entries.get(source)
        return entry[2] if entry is not None and entry[2] > now else None

    def fail(self, source: str, now: datetime) -> None:
        """Count a failed sign-in from ``source``."""
        with self._lock:
            failures, last, _ = self._entries.pop(source, (0, now, now))
            if now - last > SOURCE_FORGET_AFTER:
                failures = 0
            failures += 1
            delay = backoff(failures, free=SOURCE_FREE_FAILURES, cap=SOURCE_MAX_DELAY)
            if len(self._entries) >= self._max:
                for _ in range(max(1, self._max // 4)):  # the least recently failed quarter
                    self._entries.popitem(last=False)
            self._entries[source] = (failures, now, now + delay)


class Busy(ServiceUnavailable):
    """Too many password verifications are running or waiting; try again in a second."""

    def __init__(self) -> None:
        super().__init__(
            "Too many sign-ins at once; try again in a moment.", headers={"Retry-After": "1"}
        )


class VerifyGate:
    """At most ``running`` argon2id verifications at once and ``waiting`` queued for a slot.

    Each verification takes 19 MiB and most of a core for tens of milliseconds; without a
    cap a burst of sign-ins would fill the threadpool and starve the API. A caller beyond
    ``running + waiting`` gets :class:`Busy` at once, without hashing anything.
    """

    def __init__(self, running: int = 2, waiting: int = 8, timeout: float = 10.0) -> None:
        self._slots = threading.BoundedSemaphore(running)
        self._admitted = 0
        self._limit = running + waiting
        self._timeout = timeout
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a verification slot (waiting for one if needed); Busy if none can be had."""
        with self._lock:
            if self._admitted >= self._limit:
                raise Busy()
            self._admitted += 1
        try:
            if not self._slots.acquire(timeout=self._timeout):
                raise Busy()
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._admitted -= 1
