"""Denied and failed API requests: one audit event each, in its own short transaction.

A route opts in with ``openapi_extra=marker(action, ...)`` (shown in the OpenAPI document as
``x-audit``); ``create_app`` hands :func:`record` to the exception handlers, which call it for
every problem response. By then the request's own transaction has rolled back (nothing of a
failed business write survives), so the event is committed separately, after the rollback.

Cost on the success path: none beyond :func:`remember`, one dict entry set by the
authentication dependencies so a later 403, 404 or 422 can name the caller (its actor is
only computed if an event is written).

Never PHI: the event holds the route's action, the caller (or ``system`` with no clinic for a
401, where the caller is unknown), the target id from the path (only if it parses as a UUID)
or a validated ``<type>:<id>`` query target, the status, the problem type and the error
codes. Never a submitted value, a subject reference, a token or a raw query string.
"""

import logging
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from app.audit import service as audit_service
from app.context import context_of
from app.db.models import ActorType, AuditOutcome

__all__ = ["EXTENSION", "Caller", "marker", "outcome_of", "record", "remember"]

EXTENSION = "x-audit"
_CALLER = "audit_caller"
_UNKNOWN = audit_service.Actor(ActorType.system, None)
logger = logging.getLogger(__name__)


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
