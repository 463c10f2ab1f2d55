"""Shortcuts: the hot JSON routes called past FastAPI's routing and dependency solving.

``POST /v1/evaluate`` and ``POST /v1/screenings`` carry an intake system's traffic. On them,
FastAPI's per-request machinery (matching ~60 routes, ``solve_dependencies``, the request
handler's layers) cost about as much as the service's own work (bench/README.md). A shortcut
calls the route's endpoint function directly, but only for a request it *admits*: one the
full FastAPI path would certainly hand to that endpoint with the same arguments.

- the method and path are the route's exactly, with no ``root_path``;
- ``Content-Type`` is exactly ``application/json`` and the body arrived whole;
- the body is JSON that the route's pydantic model accepts;
- the bearer API key is in the key cache and has the route's scope;
- the headers the endpoint reads (``Authorization``, ``Idempotency-Key``) appear at most once.

Admission has no side effects. Any other request goes down the full FastAPI path with its
body replayed: no key or an uncached one, a wrong scope, malformed JSON, a body the model
rejects, a body cut off by a disconnect or over the size limit, another media type. So every
such error response is FastAPI's and the exception handlers' own. An admitted request runs
the same endpoint function; an error it raises (``AppError``, ``HTTPException``) goes to the
app's handler for it, as Starlette's ``ExceptionMiddleware`` would send it, and any other
exception propagates to the last-resort handler as before. ``tests/test_shortcut.py`` sends
the same requests through both paths and compares the responses.
"""

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.apikey import service as apikey_service
from app.deps import ApiKeyAuth, note_api_client
from app.errors import AppError

Endpoint = Callable[[Request, Any, apikey_service.Client], Awaitable[Response]]
"""The route's endpoint, called with the request, the validated body and the API client."""


@dataclass(frozen=True, slots=True)
class Shortcut:
    """A JSON ``POST`` route that can be called past FastAPI for admitted requests.

    Attributes:
        route: The route as declared (its path, its ``openapi_extra`` for denial auditing).
        model: The pydantic model of the body, as the route declares it.
        auth: The route's API-key dependency (its scope).
        endpoint: Calls the route's endpoint function.
    """

    route: APIRoute
    model: type[BaseModel]
    auth: ApiKeyAuth
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request a shortcut takes: the validated body and the cached API client."""

    shortcut: Shortcut
    body: BaseModel
    client: apikey_service.Client


# Headers the shortcut's decision or the endpoints read: repeated, the request goes the full way.
_SINGLE = frozenset({b"content-type", b"authorization", b"idempotency-key"})


class Shortcuts:
    """The app's shortcuts by path; ``HttpMiddleware`` offers each request to ``handle``."""

    def __init__(self, app: FastAPI, shortcuts: Iterable[Shortcut]) -> None:
        self._app = app
        self._by_path = {shortcut.route.path: shortcut for shortcut in shortcuts}

    def wants(self, scope: Scope) -> bool:
        """Whether a shortcut may take this request (cheap: method and path only)."""
        return (
            scope["method"] == "POST"
            and scope["path"] in self._by_path
            and not scope.get("root_path")
        )

    def admit(self, scope: Scope, body: bytes) -> Admitted | None:
        """The shortcut's arguments for a request it may take, or None (the full path)."""
        if not self.wants(scope):
            return None
        shortcut = self._by_path[scope["path"]]
        content_type, authorization = None, None
        seen: set[bytes] = set()
        for name, value in scope["headers"]:
            if name in _SINGLE:
                if name in seen:
                    return None
                seen.add(name)
                if name == b"content-type":
                    content_type = value
                elif name == b"authorization":
                    authorization = value
        if content_type is None or content_type.lower() != b"application/json" or not body:
            return None
        client = shortcut.auth.cached(
            self._app.state.key_cache,
            None if authorization is None else authorization.decode("latin-1"),
        )
        if client is None:
            return None
        try:
            validated = shortcut.model.model_validate(json.loads(body))
        except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError too
            return None
        return Admitted(shortcut, validated, client)

    async def handle(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """Serve one request a shortcut ``wants``: by the shortcut if admitted, else by ``app``."""
        messages, body, error = await _read_body(receive)
        admitted = None if error is not None or body is None else self.admit(scope, body)
        replay = _replayed(messages, error, receive)
        if admitted is None:
            await app(scope, replay, send)
            return
        scope["route"] = admitted.shortcut.route
        scope["path_params"] = {}
        request = Request(scope, replay, send)
        note_api_client(request, admitted.client)
        try:
            response = await admitted.shortcut.endpoint(request, admitted.body, admitted.client)
        except (AppError, HTTPException) as exc:
            response = await self._handled(request, exc)
        await response(scope, replay, send)

    async def _handled(self, request: Request, exc: Exception) -> Response:
        """The app's handler's response to ``exc`` (what ``ExceptionMiddleware`` sends)."""
        handlers = self._app.exception_handlers
        handler = handlers.get(exc.status_code) if isinstance(exc, HTTPException) else None
        # By class, nearest first; the handler of Exception is ServerErrorMiddleware's.
        classes = [cls for cls in type(exc).__mro__ if cls in handlers and cls is not Exception]
        if handler is None and classes:
            handler = handlers[classes[0]]
        if handler is None:
            raise exc
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        assert isinstance(response, Response)
        return response


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None, Exception | None]:
    """Receive the whole body: the messages, the body (None if cut off) and any error."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    try:
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages, None, None  # the client went away: the full path says so
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return messages, b"".join(chunks), None
    except Exception as error:  # e.g. the body limit: raised again to the full path
        return messages, None, error


def _replayed(messages: Sequence[Message], error: Exception | None, receive: Receive) -> Receive:
    """``receive`` as if nothing had been read: the read messages, the error, then the rest."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        if error is not None:
            raise error
        return await receive()

    return replay
