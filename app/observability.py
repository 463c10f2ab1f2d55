"""The app's one pure-ASGI middleware: request ids, metrics, access log, body limit, headers.

Labels and log lines use the *route template* (``/v1/screenings/{screening_id}``), never the
raw path or query, so no id, token or PHI ever becomes a label value or a log field.
"""

import logging
import re
import time
import uuid

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import html, jsonbody
from app.errors import problem_response
from app.logs import exception_fields, log_fields
from app.metrics import Metrics

logger = logging.getLogger("app.access")
errors_logger = logging.getLogger("app.errors")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _request_id_and_length(scope: Scope) -> tuple[str, bytes | None]:
    """The request id (the client's ``X-Request-ID`` if well formed) and ``Content-Length``."""
    incoming, declared = b"", None
    for name, value in scope["headers"]:  # the last of repeated headers wins, as with dict()
        if name == b"x-request-id":
            incoming = value
        elif name == b"content-length":
            declared = value
    request_id = incoming.decode("latin-1")
    if not _REQUEST_ID.match(request_id):
        request_id = uuid.uuid4().hex
    return request_id, declared


class HttpMiddleware:
    """The app's one middleware layer: what four pure-ASGI layers did, in their order.

    Outermost first: (1) assign a request id (``X-Request-ID``), count, time and log every
    request, and answer unhandled errors with a generic problem; (2) reject bodies over
    ``max_bytes`` with 413 (on a page path, the 413 page); (3) add the security headers
    (``app.html``) to every response the app sends; (4) on a page path, answer an unhandled
    exception with the HTML 500 page before (1) logs it. The 413 problem and the generic 500
    problem, sent from outside (3), carry the request id but not the security headers; the
    413 page has them (both carry ``Cache-Control: no-store`` and, in production, HSTS). One
    layer instead of four: each layer cost a coroutine and a ``send`` wrapper per request
    (bench/README.md).

    One JSON access line per request: request id, method, route template, status, latency
    and the clinic id the authentication dependency recorded in ``scope["state"]``.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        max_bytes: int,
        is_hsts: bool = False,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.is_hsts = is_hsts  # production: Strict-Transport-Security on every response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, declared = _request_id_and_length(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode())
        path = str(scope.get("path", ""))
        is_docs, is_asset, is_hsts = html.is_docs_path(path), html.is_asset_path(path), self.is_hsts
        # The 413 and generic 500 problems, sent from outside the headers layer: not cached.
        plain_headers = [id_header, html.NO_STORE, *([html.HSTS] if is_hsts else [])]
        status = 500
        started = time.perf_counter()
        is_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, is_started
            if message["type"] == "http.response.start":
                status, is_started = message["status"], True
                message.setdefault("headers", []).extend(plain_headers)
            await send(message)

        async def send_secured(message: Message) -> None:
            nonlocal status, is_started
            if message["type"] == "http.response.start":
                flags = {"is_docs": is_docs, "is_asset": is_asset, "is_hsts": is_hsts}
                html.add_security_headers(message, **flags)
                status, is_started = message["status"], True
                message["headers"].append(id_header)
            await send(message)

        try:
            if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
                if html.is_page(path):  # a page's form: the 413 page, with its headers
                    await html.send_error_page(scope, receive, send_secured, 413)
                else:
                    await self._reject(scope, receive, send_with_id)
            else:
                await self._call_app(scope, self._limited(scope, receive), send_secured, path)
        except Exception as exc:
            # The last-resort handler: the client gets a generic problem with the request id,
            # the log gets the exception type and code locations, never its message (values).
            status = 500
            route = getattr(scope.get("route"), "path", "unmatched")
            errors_logger.error(
                "unhandled exception",
                extra={"request_id": request_id, "route": route} | exception_fields(exc),
            )
            if not is_started:
                response = problem_response(
                    500,
                    slug="internal-error",
                    detail="An unexpected error occurred.",
                    extra={"request_id": request_id},
                )
                await response(scope, receive, send_with_id)
        finally:
            self._finish(scope, request_id, status, time.perf_counter() - started)

    def _finish(self, scope: Scope, request_id: str, status: int, elapsed: float) -> None:
        """Count and time the request; write its access line."""
        route = getattr(scope.get("route"), "path", "unmatched")
        method = scope["method"]
        self.metrics.observe(method, route, status, elapsed)
        if logger.isEnabledFor(logging.INFO):
            log_fields(
                logger,
                "request",
                {
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "latency_ms": round(elapsed * 1e3, 2),
                    "clinic_id": scope["state"].get("clinic_id"),
                },
            )

    async def _call_app(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """Run the app; on a page path, send the 500 page for an unhandled exception."""
        if not html.is_page(path):
            await self.app(scope, receive, send)
            return
        is_started = False

        async def send_tracking(message: Message) -> None:
            nonlocal is_started
            is_started = is_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            # The log line and the 500 count still come from ``__call__``; it sends nothing
            # more, as the response has started.
            if not is_started:
                await html.send_error_page(scope, receive, send_tracking)
            raise

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        """``receive``, raising 413 once the streamed body passes the limit, 400 if too deep.

        The nesting limit is checked here, once, for every route and every code path
        (FastAPI's body parsing, the hot routes' ``read_json``, the FHIR routes): a JSON
        body nested deeper than ``jsonbody.MAX_DEPTH`` never reaches a parser or a model.
        """
        received = 0
        max_bytes = self.max_bytes
        chunks: list[bytes] = []

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > max_bytes:
                raise _TooLarge()
            if chunk:
                chunks.append(chunk)
            if chunks and not message.get("more_body", False):
                is_deep = _is_too_deep(scope, chunks)
                chunks.clear()  # checked once: a later receive (a disconnect) adds nothing
                if is_deep:
                    raise _TooDeep()
            return message

        # A streamed body that passes the limit raises inside the app's body parsing; FastAPI
        # re-raises HTTP exceptions, and the problem+json handler answers 413 (or 400).
        return limited_receive

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            slug="content-too-large",
            detail=f"The request body is larger than {self.max_bytes} bytes.",
        )
        await response(scope, receive, send)


def _is_too_deep(scope: Scope, chunks: list[bytes]) -> bool:
    """Whether a whole body, parsed as JSON by its route, is nested too deeply."""
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not jsonbody.is_too_deep(body):  # the common case: a few brackets, two counts
        return False
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    return jsonbody.is_json_type(content_type.decode("latin-1"))


class _TooDeep(HTTPException):
    """A JSON body nested more than ``jsonbody.MAX_DEPTH`` levels (raised inside receive)."""

    def __init__(self) -> None:
        super().__init__(400, jsonbody.TOO_DEEP)


class _TooLarge(HTTPException):
    """A streamed body passed the limit (raised inside the app's receive)."""

    def __init__(self) -> None:
        super().__init__(413, "The request body is too large.")
