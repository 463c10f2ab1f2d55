"""A stored rule pack that fails its hash check: the audit event and the HTTP answer.

``RulePackIntegrityError`` (``app.rulepack.service``) is raised by the one loader of stored
packs. Its request's transaction rolls back, so the ``rule_pack.integrity_failed`` event is
appended in a short transaction of its own (``append_separately``), then the response is
whatever the app answers to any ``AppError`` on that path: problem+json (type
``urn:problem-type:screening:rule-pack-integrity``) on the API, the 500 error page on the
physician's pages. The patient form renders its own page (``app.form.router``) and records
the same event through :func:`record`.

The event names the pack (``target_id``, ``ruleset_sha256``) and the hash of what is stored
now; never the stored text, never PHI.
"""

import logging
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from app.audit import service as audit_service
from app.context import context_of
from app.db.models import AuditOutcome
from app.rulepack.service import RulePackIntegrityError

__all__ = ["ACTION", "RulePackIntegrityError", "handler", "record"]

ACTION = "rule_pack.integrity_failed"
logger = logging.getLogger(__name__)

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


async def record(request: Request, error: RulePackIntegrityError) -> None:
    """Append the ``rule_pack.integrity_failed`` event in its own transaction (best effort)."""
    state = request.scope.get("state", {})
    logger.error("stored rule pack %s fails its hash check", error.sha256)
    try:
        await run_in_threadpool(
            audit_service.append_separately,
            context_of(request).unit,
            action=ACTION,
            actor=audit_service.Actor.system(),
            clinic_id=None,
            target_type="rule_pack",
            target_id=error.sha256,
            outcome=AuditOutcome.failed,
            request_id=state.get("request_id"),
            ruleset_sha256=error.sha256,
            detail={"stored_sha256": error.stored_sha256, "route": _route(request)},
        )
    except Exception as failure:  # the integrity error must still be answered
        logger.error("could not audit a rule pack integrity failure: %s", type(failure).__name__)


def _route(request: Request) -> str | None:
    # The route's template ("/f/{clinic_id}/{token}"), never the path: it may hold a token.
    path = getattr(request.scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


def handler(app_error_handler: Handler) -> Handler:
    """The exception handler of ``RulePackIntegrityError``: audit, then ``app_error_handler``.

    ``app_error_handler`` is the app's handler of every ``AppError`` (problem+json, or an
    error page on page paths), so the answer is the same as any other handled 500.
    """

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RulePackIntegrityError)
        await record(request, exc)
        response = app_error_handler(request, exc)
        return await response if isinstance(response, Awaitable) else response

    return handle
