"""Request metrics, request ids, access log and the body-size limit (pure ASGI middleware).

Labels and log lines use the *route template* (``/v1/screenings/{screening_id}``), never the
raw path or query, so no id, token or PHI ever becomes a label value or a log field.
"""

import logging
import re
import time
import uuid
from dataclasses import dataclass, field

from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response
from app.logs import exception_fields

logger = logging.getLogger("app.access")
errors_logger = logging.getLogger("app.errors")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass
class Metrics:
    """The Prometheus collectors of one app (one registry per app: tests build many apps)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "screening_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "screening_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.screenings = Counter(
            "screening_screenings_created_total",
            "Screenings stored, by decision.",
            ["decision"],
            registry=self.registry,
        )
        # The labelled children by (method, route, status): ``labels()`` validates and locks
        # on every call, and the routes are a fixed set of templates.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        """Count one request and record its latency."""
        children = self._children.get((method, route, status))
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(elapsed)


class ObservabilityMiddleware:
    """Assign a request id; count, time and log every request; answer unhandled errors.

    One JSON access line per request: request id, method, route template, status, latency
    and the clinic id the authentication dependency recorded in ``scope["state"]``.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        is_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, is_started
            if message["type"] == "http.response.start":
                status, is_started = message["status"], True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
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
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.observe(method, route, status, elapsed)
            logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "latency_ms": round(elapsed * 1e3, 2),
                    "clinic_id": scope["state"].get("clinic_id"),
                },
            )


class BodyLimitMiddleware:
    """Reject request bodies over ``max_bytes`` with 413, before the app parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge()
            return message

        # A streamed body that passes the limit raises inside the app's body parsing; FastAPI
        # re-raises HTTP exceptions, and the problem+json handler answers 413.
        await self.app(scope, limited_receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            slug="content-too-large",
            detail=f"The request body is larger than {self.max_bytes} bytes.",
        )
        await response(scope, receive, send)


class _TooLarge(HTTPException):
    """A streamed body passed the limit (raised inside the app's receive)."""

    def __init__(self) -> None:
        super().__init__(413, "The request body is too large.")
