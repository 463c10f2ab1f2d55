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
        "The key lacks the needed scope.",
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
