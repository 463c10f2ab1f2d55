"""AppError hierarchy with status codes; the RFC 9457 problem+json exception handlers.

Every 4xx and 5xx leaves as ``application/problem+json``. Validation problems carry an
``errors`` list of ``{code, message, pointer | parameter, item?}``. No message ever repeats a
submitted value: answers are PHI and a 4xx body may end up in a client's logs.
"""

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.db.engine import UNAVAILABLE_ERRORS
from app.logs import exception_fields

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:problem-type:screening:"

logger = logging.getLogger(__name__)
_HTTP_SLUGS = {413: "content-too-large"}

ProblemObserver = Callable[[Request, int, str, Sequence[str]], Awaitable[None]]
"""Told of each 4xx problem response: ``(request, status, problem slug, error codes)``.

``create_app`` passes the audit trail's recorder of denied and failed requests; it runs only
on the error path, after the request's own transaction has rolled back.
"""


@dataclass(frozen=True, slots=True)
class ProblemItem:
    """One problem in a request: a stable code, where it is, and why (never the value)."""

    code: str
    message: str
    pointer: str | None = None  # JSON pointer into the body, e.g. "#/answers/pregnant"
    parameter: str | None = None  # a query, path or header parameter name
    item: str | None = None  # the questionnaire item id, for answer problems

    def to_dict(self) -> dict[str, str]:
        """Return the JSON form, without the members that do not apply."""
        return {key: value for key, value in asdict(self).items() if value is not None}


class AppError(Exception):
    """A failure the client can act on; its class decides the status and problem type."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[ProblemItem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


class BadRequest(AppError):
    """The request is malformed in a way validation does not cover (e.g. a header)."""

    status = 400
    slug = "bad-request"


class Unauthorized(AppError):
    """No API key, or one that is unknown or revoked."""

    status = 401
    slug = "unauthorized"

    def __init__(self, detail: str = "A valid API key is required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    """The API key lacks the scope the operation needs."""

    status = 403
    slug = "forbidden"


class NotFound(AppError):
    """Nothing with this id exists for this caller (another clinic's data included)."""

    status = 404
    slug = "not-found"


class Conflict(AppError):
    """The request conflicts with the current state."""

    status = 409
    slug = "conflict"


class ContentTooLarge(AppError):
    """The request body exceeds the configured limit."""

    status = 413
    slug = "content-too-large"


class ValidationFailed(AppError):
    """The request or its answers are invalid; nothing was evaluated or stored."""

    status = 422
    slug = "validation-failed"


class IdempotencyKeyReused(AppError):
    """The Idempotency-Key was already used by this clinic with a different body."""

    status = 422
    slug = "idempotency-key-reused"


class TooManyRequests(AppError):
    """The credential or source is over its rate limit; retry after ``Retry-After``."""

    status = 429
    slug = "too-many-requests"


class ServiceUnavailable(AppError):
    """A dependency (the database) is not available; retry later."""

    status = 503
    slug = "service-unavailable"


RETRY_AFTER_SECONDS = 5


class DatabaseUnavailable(ServiceUnavailable):
    """The database could not be reached or was busy (``UNAVAILABLE_ERRORS``): retry later.

    Whether a write that failed at its commit was stored is unknown to the service, so the
    client retries with the same Idempotency-Key (a stored write replays).
    """

    def __init__(self) -> None:
        super().__init__(
            "The database is not available right now. Retry later, with the same "
            "Idempotency-Key for a write.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def problem_response(
    status: int,
    *,
    slug: str,
    detail: str,
    errors: list[ProblemItem] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
) -> Response:
    """Build an RFC 9457 ``application/problem+json`` response (``extra``: more members)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    } | (extra or {})
    if errors:
        body["errors"] = [error.to_dict() for error in errors]
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _json_pointer(parts: tuple[int | str, ...]) -> str:
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return "#/" + "/".join(escaped)


def request_problems(raw_errors: list[dict[str, Any]]) -> list[ProblemItem]:
    """Translate pydantic/FastAPI errors, dropping ``input`` and ``ctx`` (they echo values)."""
    items = []
    for error in raw_errors:
        location, *rest = error.get("loc", ()) or ("body",)
        code, message = str(error.get("type", "invalid")), str(error.get("msg", "invalid"))
        if location == "body":
            items.append(ProblemItem(code, message, pointer=_json_pointer(tuple(rest))))
        else:
            name = ".".join(str(part) for part in rest) or str(location)
            items.append(ProblemItem(code, message, parameter=name))
    return items


# Codes whose location ends in a key the *client* chose: it is logged without that key.
_NAMES_CLIENT_KEY = frozenset({"unknown_item", "extra_forbidden"})


def _logged_location(problem: ProblemItem) -> dict[str, str]:
    is_client_key = problem.code in _NAMES_CLIENT_KEY
    if problem.item is not None and not is_client_key:
        return {"item": problem.item}
    if problem.pointer is not None:
        return {"pointer": problem.pointer.rsplit("/", 1)[0] if is_client_key else problem.pointer}
    return {} if problem.parameter is None else {"parameter": problem.parameter}


def _log_rejection(request: Request, status: int, slug: str, errors: list[ProblemItem]) -> None:
    """Log a 4xx with its problem codes and item ids; never a submitted value."""
    logger.info(
        "request rejected",
        extra={
            "request_id": str(request.scope.get("state", {}).get("request_id", "")),
            "status": status,
            "problem": slug,
            "errors": [{"code": e.code} | _logged_location(e) for e in errors],
        },
    )


async def _ignore(_request: Request, _status: int, _slug: str, _codes: Sequence[str]) -> None:
    return None


async def _app_error(request: Request, exc: Exception, observe: ProblemObserver) -> Response:
    assert isinstance(exc, AppError)
    if not isinstance(exc, DatabaseUnavailable):
        await observe(request, exc.status, exc.slug, [error.code for error in exc.errors])
    if exc.errors:
        _log_rejection(request, exc.status, exc.slug, exc.errors)
    return problem_response(
        exc.status, slug=exc.slug, detail=exc.detail, errors=exc.errors, headers=exc.headers
    )


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # Through the app's AppError handler (a page path gets the 503 page); the type only is
    # logged, the message may name values. Not observed: the audit trail is in that database.
    request_id = str(request.scope.get("state", {}).get("request_id", ""))
    logger.warning("database unavailable", extra={"request_id": request_id} | exception_fields(exc))
    handler = request.app.exception_handlers[AppError]
    response: Response = await handler(request, DatabaseUnavailable())
    return response


async def _request_validation(
    request: Request, exc: Exception, observe: ProblemObserver
) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = request_problems(list(exc.errors()))
    await observe(request, 422, ValidationFailed.slug, [problem.code for problem in problems])
    _log_rejection(request, 422, ValidationFailed.slug, problems)
    return problem_response(
        422,
        slug=ValidationFailed.slug,
        detail="The request is not valid; see errors.",
        errors=problems,
    )


async def _http_exception(request: Request, exc: Exception, observe: ProblemObserver) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    slug = _HTTP_SLUGS.get(exc.status_code, phrase.lower().replace(" ", "-"))
    await observe(request, exc.status_code, slug, ())
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status_code, slug=slug, detail=detail, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Normally unreachable: ObservabilityMiddleware answers unhandled errors first. Log the
    # type and code locations only, never the message (it may hold submitted values).
    request_id = str(request.scope.get("state", {}).get("request_id", ""))
    logger.error("unhandled exception", extra={"request_id": request_id} | exception_fields(exc))
    return problem_response(
        500,
        slug=AppError.slug,
        detail="An unexpected error occurred.",
        extra={"request_id": request_id},
    )


def install_handlers(app: FastAPI, *, observe: ProblemObserver = _ignore) -> None:
    """Register one handler per error family on ``app``; ``observe`` sees every 4xx problem."""
    app.add_exception_handler(AppError, partial(_app_error, observe=observe))
    app.add_exception_handler(RequestValidationError, partial(_request_validation, observe=observe))
    app.add_exception_handler(StarletteHTTPException, partial(_http_exception, observe=observe))
    for family in UNAVAILABLE_ERRORS:
        app.add_exception_handler(family, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
