"""Denied and failed API requests: one audit event each, in its own short transaction.

A route opts in with ``openapi_extra=marker(action, ...)`` (shown in the OpenAPI document as
``x-audit``); ``create_app`` hands :func:`record` to the exception handlers, which call it for
every problem response. By then the request's own transaction has rolled back (nothing of a
failed business write survives), so the event is committed separately, after the rollback.

Cost on the success path: none beyond :func:`remember`, one dict entry set by the
authentication dependencies so a later 403, 404 or 422 can name the caller (its actor is
only computed if an event is written).

Requests without a valid credential (no caller) and rate-limited requests (429) are not an
event each: the chain must not be a denial-of-service lever. :class:`DenialTally` counts them
per minute window, route, source address and status, and one ``auth.denials_counted`` event
per window records the counts; it is written by the first denial of a later window, and by
:func:`flush` at shutdown. Every other denial of an identified caller stays one event each.

Never PHI: the event holds the route's action, the caller (or ``system`` with no clinic for a
401, where the caller is unknown), the target id from the path (only if it parses as a UUID)
or a validated ``<type>:<id>`` query target, the status, the problem type and the error
codes. Never a submitted value, a subject reference, a token or a raw query string.
"""

import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from app.audit import service as audit_service
from app.context import AppContext, context_of
from app.db.models import ActorType, AuditOutcome

__all__ = [
    "COUNTED_ACTION",
    "EXTENSION",
    "Caller",
    "DenialTally",
    "flush",
    "marker",
    "outcome_of",
    "record",
    "remember",
]

EXTENSION = "x-audit"
_CALLER = "audit_caller"
_UNKNOWN = audit_service.Actor(ActorType.system, None)
logger = logging.getLogger(__name__)
COUNTED_ACTION = "auth.denials_counted"
_MAX_KEYS = 1_000  # distinct (route, source, status, actor) per window; more are only totalled


@dataclass(frozen=True, slots=True)
class Window:
    """One minute's counted denials: per (route, source, status, actor id) and in all."""

    started_at: datetime
    counts: dict[tuple[str, str, int, str | None], int]
    total: int

    def detail(self) -> dict[str, Any]:
        """The event's detail: the counts, largest first (route templates, never raw paths)."""
        ranked = sorted(self.counts.items(), key=lambda entry: -entry[1])
        return {
            "window_started_at": self.started_at.isoformat().replace("+00:00", "Z"),
            "window_seconds": 60,
            "total": self.total,
            "counts": [
                {"route": route, "source": source, "status": status, "count": count}
                | ({} if actor_id is None else {"actor_id": actor_id})
                for (route, source, status, actor_id), count in ranked
            ],
        }


class DenialTally:
    """Denials counted per minute window in memory (bounded), handed out a window at a time.

    One per app, a component of its ``AppContext``. At most ``max_keys`` distinct keys per
    window; denials beyond them still count in ``total``.
    """

    def __init__(self, max_keys: int = _MAX_KEYS) -> None:
        self._max = max_keys
        self._started_at: datetime | None = None
        self._counts: dict[tuple[str, str, int, str | None], int] = {}
        self._total = 0
        self._lock = threading.Lock()

    def add(self, now: datetime, key: tuple[str, str, int, str | None]) -> Window | None:
        """Count one denial at ``now``; return the previous window if this one is new."""
        started_at = now.replace(second=0, microsecond=0)
        with self._lock:
            ended = self._take() if started_at != self._started_at else None
            self._started_at = started_at
            if key in self._counts or len(self._counts) < self._max:
                self._counts[key] = self._counts.get(key, 0) + 1
            self._total += 1
        return ended

    def take(self) -> Window | None:
        """The current window's counts (None if empty), starting afresh."""
        with self._lock:
            return self._take()

    def _take(self) -> Window | None:
        if self._started_at is None or self._total == 0:
            return None
        window = Window(self._started_at, self._counts, self._total)
        self._counts, self._total, self._started_at = {}, 0, None
        return window


class Caller(Protocol):
    """An authenticated caller (an API client, a signed-in user): its actor and clinic."""

    @property
    def actor(self) -> audit_service.Actor:  # noqa: D102
        ...

    @property
    def clinic_id(self) -> uuid.UUID:  # noqa: D102
        ...


def marker(
    action: str,
    target_type: str | None = None,
    *,
    path_param: str | None = None,
    query_param: str | None = None,
) -> dict[str, Any]:
    """Return the ``openapi_extra`` that makes a route's denials and failures audited.

    Args:
        action: The action the route audits on success, e.g. ``"screening.read"``.
        target_type: What it acts on (``"screening"``).
        path_param: The path parameter holding the target id (``"screening_id"``).
        query_param: A query parameter holding a ``<type>:<id>`` target (``"target"``).
    """
    spec = {
        "action": action,
        "target_type": target_type,
        "path_param": path_param,
        "query_param": query_param,
    }
    return {EXTENSION: {key: value for key, value in spec.items() if value is not None}}


def remember(request: Request, caller: Caller) -> None:
    """Note the authenticated caller on the request, for a later denial event."""
    request.scope.setdefault("state", {})[_CALLER] = caller


def outcome_of(status: int) -> AuditOutcome:
    """401/403 denied, 404 not_found, 409/412 and 5xx failed, any other 4xx invalid."""
    if status in (401, 403):
        return AuditOutcome.denied
    if status == 404:
        return AuditOutcome.not_found
    if status in (409, 412) or status >= 500:
        return AuditOutcome.failed
    return AuditOutcome.invalid


async def record(request: Request, status: int, problem: str, codes: Sequence[str]) -> None:
    """Audit a problem response of a marked route; a no-op for any other route.

    Best effort: a failure to write the event is logged (without detail) and never turns
    the client's 4xx into a 500.
    """
    spec = getattr(request.scope.get("route"), "openapi_extra", None) or {}
    audited = spec.get(EXTENSION)
    if audited is None:
        return
    caller: Caller | None = request.scope.get("state", {}).get(_CALLER)
    if caller is None or status == 429:
        await _count(request, status, caller)
        return
    target_type, target_id = _target(request, audited)
    detail: dict[str, Any] = {"status": status, "problem": problem}
    if codes:
        detail["codes"] = list(dict.fromkeys(codes))
    try:
        await run_in_threadpool(
            audit_service.append_separately,
            context_of(request).unit,
            action=audited["action"],
            actor=_UNKNOWN if caller is None else caller.actor,
            clinic_id=None if caller is None else caller.clinic_id,
            target_type=target_type,
            target_id=target_id,
            outcome=outcome_of(status),
            request_id=request.scope.get("state", {}).get("request_id"),
            detail=detail,
        )
    except Exception as error:  # auditing a denial must never mask it
        logger.error("could not audit a %d response: %s", status, type(error).__name__)


async def _count(request: Request, status: int, caller: Caller | None) -> None:
    """Count a denial of no caller (or a 429) instead of an event; write an ended window."""
    context = context_of(request)
    route = getattr(request.scope.get("route"), "path", "unmatched")
    source = request.client.host if request.client is not None else "unknown"
    actor_id = None if caller is None else f"{caller.actor.type.value}:{caller.actor.id}"
    ended = context.component(DenialTally, DenialTally).add(
        context.clock.now(), (route, source, status, actor_id)
    )
    if ended is not None:
        await run_in_threadpool(_write, context, ended)


def flush(context: AppContext) -> None:
    """Write the current window's counts now (at shutdown); best effort, like ``record``."""
    tally = context.components.get(DenialTally)
    window = tally.take() if isinstance(tally, DenialTally) else None
    if window is not None:
        _write(context, window)


def _write(context: AppContext, window: Window) -> None:
    try:
        audit_service.append_separately(
            context.unit,
            action=COUNTED_ACTION,
            actor=_UNKNOWN,
            clinic_id=None,
            outcome=AuditOutcome.denied,
            detail=window.detail(),
        )
    except Exception as error:  # auditing denials must never mask them
        logger.error("could not audit counted denials: %s", type(error).__name__)


def _target(request: Request, audited: dict[str, str]) -> tuple[str | None, str | None]:
    target_type = audited.get("target_type")
    if "path_param" in audited:
        raw = request.path_params.get(audited["path_param"])
        try:
            return target_type, None if raw is None else str(uuid.UUID(str(raw)))
        except ValueError:
            return target_type, None  # not an id: never record what was sent instead
    if "query_param" in audited:
        try:
            return audit_service.parse_target(request.query_params.get(audited["query_param"], ""))
        except ValueError:
            return None, None
    return target_type, None
