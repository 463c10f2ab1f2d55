"""JSON request bodies read by the endpoint itself with the model's ``model_validate_json``.

For the hot routes, which take the ``Request`` and leave FastAPI nothing to solve. Their
answers are FastAPI's own: a JSON decode error is a 422 ``json_invalid`` at the error's
offset and any other parse failure (invalid UTF-8, nesting too deep) a 400, both before
authentication; a body the model rejects is a 422 (``RequestValidationError``, rendered by
``app/errors.py``) raised by ``JsonBody.value`` after it. Only media types ``application/json``
and ``application/*+json`` are parsed as JSON; any other body, or none, is validated as raw
bytes and rejected by the model, as FastAPI does with ``strict_content_type``.
"""

import email.message
import json
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)

MAX_DEPTH = 64
"""The deepest JSON nesting any route accepts; deeper is a 400 (``HttpMiddleware``)."""
TOO_DEEP = f"The JSON body is nested more than {MAX_DEPTH} levels deep."
# A JSON string (escapes included) or one bracket: brackets inside strings do not count.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True, slots=True)
class JsonBody(Generic[Model]):
    """A body that parsed: the validated model, or the model's errors (raised by ``value``)."""

    parsed: Model | None
    errors: tuple[dict[str, Any], ...] = ()

    def value(self) -> Model:
        """The validated body; RequestValidationError (422) if the model rejected it."""
        if self.parsed is None:
            raise RequestValidationError(self.errors)
        return self.parsed


def is_too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``body`` opens more than ``limit`` nested arrays or objects.

    Cheap on every body: with at most ``limit`` opening brackets in all it cannot be too
    deep (two C-speed counts); only then are the brackets outside strings tracked.
    """
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    depth = 0
    for token in _TOKENS.findall(body):
        if token in (b"{", b"["):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"}", b"]"):
            depth -= 1
    return False


def is_json_type(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this media type as JSON (no type at all included)."""
    return not content_type or _is_json(content_type)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    if content_type.lower() == "application/json":  # what clients send: no parsing needed
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def read_json(request: Request, model: type[Model]) -> JsonBody[Model]:
    """Read and parse the request's body as ``model``.

    Raises:
        RequestValidationError: The body is not JSON (422 ``json_invalid``).
        HTTPException: The body cannot be parsed at all (400).
    """
    body = await request.body()
    is_json = bool(body) and _is_json(request.headers.get("content-type"))
    if is_json:
        try:
            return JsonBody(model.model_validate_json(body))
        except ValidationError:
            pass  # the error path below says what FastAPI would have said
    return _parse_slowly(model, body, is_json=is_json)


def _parse_slowly(model: type[Model], body: bytes, *, is_json: bool) -> JsonBody[Model]:
    """What FastAPI makes of a body the fast parse rejected: ``json.loads``, then the model."""
    if not body:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        return JsonBody(None, (missing,))
    value: Any = body
    if is_json:
        try:
            value = json.loads(body)
        except json.JSONDecodeError as error:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", error.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": error.msg},
                    }
                ]
            ) from error
        except Exception as error:  # invalid UTF-8, nesting too deep for the parser
            raise HTTPException(400, "There was an error parsing the body") from error
    try:
        # As FastAPI validates a body (from_attributes: its error for a non-object names no model).
        return JsonBody(model.model_validate(value, from_attributes=True))
    except ValidationError as error:
        errors = error.errors(include_url=False)
        return JsonBody(None, tuple({**e, "loc": ("body", *e["loc"])} for e in errors))


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """The ``requestBody`` of a route's ``openapi_extra``: ``model`` as an application/json body.

    The model's schema is a component (``body_schemas`` adds it to the document).
    """
    reference = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"content": {"application/json": {"schema": reference}}, "required": True}


def body_schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    """The component schemas of the request-body models (and the models they use)."""
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas
