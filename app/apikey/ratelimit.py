"""Per-credential rate limits on ``/v1``: a token bucket per API key or user, in memory.

Each credential (an API key's id; a physician's user id for personal tokens and review
sessions) has a bucket of ``burst`` tokens refilled at ``per_second``; a request takes one.
O(1) per request, no database: a dict lookup and a few float operations under a lock. The
buckets are per process, so N replicas allow N times the rate (README "Design decisions").
An empty bucket is a 429 problem+json with ``Retry-After`` and the IETF RateLimit headers
(draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Policy: "burst";q=<burst>;w=<seconds to
refill the burst>`` and ``RateLimit: "burst";r=0;t=<seconds until the next request>``.
"""

import math
import threading
import time
from collections.abc import Callable, Hashable

from fastapi import Request

from app.context import context_of
from app.errors import TooManyRequests

_POLICY = "burst"


class RateLimiter:
    """Token buckets by credential; ``now`` is a monotonic clock in seconds (tests inject one).

    Memory is bounded by the number of live credentials (a bucket exists only after a
    credential authenticated); past ``max_entries`` the buckets that have refilled (their
    credential idle long enough to be back at ``burst``, so forgetting them changes nothing)
    are dropped.
    """

    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        now: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self._now = now
        self._max = max_entries
        self._buckets: dict[Hashable, list[float]] = {}  # credential → [tokens, updated at]
        self._lock = threading.Lock()

    def take(self, credential: Hashable) -> float:
        """Take one token for ``credential``: 0.0 if allowed, else the seconds to wait."""
        now = self._now()
        with self._lock:
            bucket = self._buckets.get(credential)
            if bucket is None:
                if len(self._buckets) >= self._max:
                    self._forget_full(now)
                self._buckets[credential] = [self.burst - 1.0, now]
                return 0.0
            tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.per_second)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / self.per_second

    def _forget_full(self, now: float) -> None:
        refill = self.burst / self.per_second
        for credential in [c for c, (_, at) in self._buckets.items() if now - at >= refill]:
            del self._buckets[credential]

    def headers(self, wait: float) -> dict[str, str]:
        """The 429's ``Retry-After`` and RateLimit headers for a wait of ``wait`` seconds."""
        seconds = max(1, math.ceil(wait))
        window = max(1, math.ceil(self.burst / self.per_second))
        return {
            "Retry-After": str(seconds),
            "RateLimit-Policy": f'"{_POLICY}";q={self.burst};w={window}',
            "RateLimit": f'"{_POLICY}";r=0;t={seconds}',
        }


def limiter_of(request: Request) -> RateLimiter:
    """The app's rate limiter (made from the settings on first use)."""
    context = context_of(request)
    settings = context.settings
    return context.component(
        RateLimiter,
        lambda: RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
    )


def check(request: Request, credential: Hashable) -> None:
    """Count one request of ``credential``; TooManyRequests (429) once its bucket is empty."""
    limiter = limiter_of(request)
    wait = limiter.take(credential)
    if wait > 0.0:
        raise TooManyRequests(
            f"This credential sent more than {limiter.per_second:g} requests per second "
            f"(bursts of {limiter.burst}); retry after the Retry-After seconds.",
            headers=limiter.headers(wait),
        )
