"""Shared by routers: one-step JSON responses and the documented problem responses."""

from collections.abc import Mapping
from typing import Any

from fastapi import Response
from pydantic import BaseModel

from app.errors import PROBLEM_JSON, PROBLEM_TYPE_PREFIX, RETRY_AFTER_SECONDS, DatabaseUnavailable


def problem_doc(description: str, example: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry: a problem+json body with an example."""
    return {"description": description, "content": {PROBLEM_JSON: {"example": example}}}


def problem_example(status: int, slug: str, detail: str, **extra: Any) -> dict[str, Any]:
    """An example problem+json body for the OpenAPI document."""
    return {
        "type": f"{PROBLEM_TYPE_PREFIX}{slug}",
        "status": status,
        "detail": detail,
        **extra,
    }


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem_doc(
        "Missing, unknown or revoked API key.",
        problem_example(401, "unauthorized", "A valid API key is required."),
    ),
    403: problem_doc(
        "The key lacks the needed scope, or is a personal token (review API only).",
        problem_example(403, "forbidden", "This API key lacks the 'screenings:write' scope."),
    ),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: problem_doc(
        "Not found for this clinic.",
        problem_example(404, "not-found", "No screening with this id."),
    )
}
_DISABLED_ITEM = {
    "code": "item_disabled",
    "pointer": "#/answers/pregnant",
    "item": "pregnant",
    "message": "pregnant does not apply given the answer to sex_at_birth; leave it out",
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: problem_doc(
        "Invalid request or answers; nothing was evaluated or stored.",
        problem_example(
            422,
            "validation-failed",
            "Some answers are not valid; nothing was evaluated or stored.",
            errors=[_DISABLED_ITEM],
        ),
    ),
    413: problem_doc(
        "The body is over the size limit.",
        problem_example(413, "content-too-large", "The request body is larger than 65536 bytes."),
    ),
}


UNPARSABLE: dict[int | str, dict[str, Any]] = {
    400: problem_doc(
        "A body that cannot be parsed (invalid UTF-8, nested too deeply).",
        problem_example(400, "bad-request", "There was an error parsing the body"),
    )
}
MALFORMED_PATH: dict[int | str, dict[str, Any]] = {
    422: problem_doc(
        "A malformed path parameter.",
        problem_example(
            422,
            "validation-failed",
            "The request is not valid; see errors.",
            errors=[
                {
                    "code": "string_pattern_mismatch",
                    "parameter": "sha256",
                    "message": "String should match pattern '^[0-9a-fA-F]{64}$'",
                }
            ],
        ),
    )
}
RULE_PACK_INTEGRITY: dict[int | str, dict[str, Any]] = {
    500: problem_doc(
        "The stored rule pack no longer matches its sha256 (altered in the database): none of "
        "it is shown, and the failure is recorded in the audit trail.",
        problem_example(
            500,
            "rule-pack-integrity",
            "The stored rule pack 3f0c...f4a3 does not match its content hash (it was altered in "
            "the database); it is not shown.",
        ),
    )
}


UNAVAILABLE: dict[str, Any] = problem_doc(
    "The database is unavailable (unreachable or busy); retry after `Retry-After` seconds.",
    problem_example(503, DatabaseUnavailable.slug, DatabaseUnavailable().detail),
) | {
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "example": RETRY_AFTER_SECONDS},
        }
    }
}
NEVER_UNAVAILABLE = frozenset({"/healthz", "/metrics"})
"""Operations that never touch the database, so never answer 503 for it."""


def declare_unavailable(document: dict[str, Any]) -> None:
    """Document the database's 503 on every operation of ``document`` that can answer it."""
    for path, operations in document.get("paths", {}).items():
        if path in NEVER_UNAVAILABLE:
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("503", UNAVAILABLE)


def model_response(
    model: type[BaseModel],
    body: Mapping[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Serialise a service's JSON-ready body through the route's declared response model.

    The body is validated by ``model`` (a body the model does not describe is a server
    error, never sent) and dumped by it; members the service left out stay out.
    """
    content = model.model_validate(body).model_dump_json(exclude_unset=True)
    return Response(content, status_code, headers, media_type="application/json")


_TOO_DEEP = problem_doc(
    "A JSON body nested more than 64 levels deep (checked before any parsing).",
    problem_example(400, "bad-request", "The JSON body is nested more than 64 levels deep."),
)
_RATE_LIMIT_HEADERS = {
    "Retry-After": {
        "description": "Seconds until the next request is allowed.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Policy": {
        "description": "The credential's policy (draft-ietf-httpapi-ratelimit-headers): "
        '`"burst";q=<burst>;w=<seconds to refill it>`.',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left: `"burst";r=0;t=<seconds until the next request>`.',
        "schema": {"type": "string"},
    },
}
_RATE_LIMITED = problem_example(
    429, "too-many-requests", "This credential sent more than 50 requests per second."
)


def declare_shared_errors(document: dict[str, Any]) -> None:
    """Declare, on every operation of ``document``, the errors answered before its code runs.

    A 400 on every operation that takes a JSON body (nesting over the limit, from the
    middleware) and a 429 with the rate-limit headers on every ``/v1`` operation that
    authenticates a credential (one with a 401). A route that already declares the status
    with another media type (FHIR's OperationOutcome) also gets the problem+json one.
    """
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            content = operation.get("requestBody", {}).get("content", {})
            if any("json" in media_type for media_type in content):
                _merge(responses, "400", _TOO_DEEP)
            if path.startswith("/v1/") and "401" in responses:
                denied = responses["401"].get("content") or {PROBLEM_JSON: {}}
                limited = {
                    "description": "Rate limit exceeded for this credential; retry later.",
                    "headers": _RATE_LIMIT_HEADERS,
                    "content": {media_type: {"example": _RATE_LIMITED} for media_type in denied},
                }
                _merge(responses, "429", limited)


def _merge(responses: dict[str, Any], status: str, entry: dict[str, Any]) -> None:
    found = responses.get(status)
    if found is None:
        responses[status] = entry
        return
    for media_type, value in entry.get("content", {}).items():
        found.setdefault("content", {}).setdefault(media_type, value)
