"""Clinic API-key auth: the bearer scheme, the key cache, scope checks and their dependencies."""

import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer
from fastapi.security.base import SecurityBase

from app.apikey import ratelimit
from app.apikey import service as apikey_service
from app.audit import denials
from app.audit import service as audit_service
from app.context import context_of, note_clinic
from app.db.models import ActorType
from app.errors import Forbidden, Unauthorized

bearer = HTTPBearer(
    auto_error=False,
    description="A clinic API key: `Authorization: Bearer sk_...` (`screening apikey create`).",
)
"""The bearer security scheme (``/docs``); physicians' personal tokens use it too."""


class KeyCache:
    """Authenticated keys for a few seconds: a database lookup per request costs far more.

    A revoked key stays usable for at most ``ttl_seconds`` (documented in the README). One
    instance per app, a component of its ``AppContext``.
    """

    def __init__(self, ttl_seconds: float = 30.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[str, tuple[float, apikey_service.Client]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> apikey_service.Client | None:
        """Return the cached client of ``key`` if still fresh."""
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, client: apikey_service.Client) -> None:
        """Remember ``client`` for ``key``."""
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self._ttl, client)


def note_api_client(request: Request, client: apikey_service.Client) -> None:
    """Record an authenticated API client: its clinic for the access line, itself for denials."""
    note_clinic(request, client.clinic_id)
    denials.remember(request, client)


def _look_up_key(request: Request, key: str) -> apikey_service.Client | None:
    with context_of(request).unit.session() as session:
        return apikey_service.authenticate(session, key=key)


def _bearer_key(authorization: str) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header value; None for anything else."""
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


async def authenticate(request: Request, scope: str | None = None) -> apikey_service.Client:
    """Authenticate the request's bearer key and check ``scope``.

    401 when the key is missing, unknown or revoked; 429 over the key's rate limit
    (``ratelimit``); 403 without ``scope``. A cached key
    costs neither a threadpool round trip nor a session; a key not in the cache is looked
    up in the threadpool, in a short transaction of its own.
    """
    key = _bearer_key(request.headers.get("Authorization", ""))
    if key is None:
        raise Unauthorized()
    cache = context_of(request).component(KeyCache)
    client = cache.get(key)
    if client is None:
        client = await run_in_threadpool(_look_up_key, request, key)
        if client is None:
            raise Unauthorized("The API key is unknown or revoked.")
        cache.put(key, client)
    note_api_client(request, client)
    ratelimit.check(request, client.api_key_id)
    if scope is not None and scope not in client.scopes:
        raise Forbidden(f"This API key lacks the {scope!r} scope.")
    return client


class ApiKeyAuth(SecurityBase):
    """The clinic API key dependency: ``authenticate`` with a scope, as a security scheme.

    One ``async`` dependency instead of a chain (bearer → authenticate → scope check): FastAPI
    solves every dependency of every request (bench/README.md). It is a security scheme
    itself, so ``/docs`` shows the same ``HTTPBearer`` scheme as ``HTTPBearer()`` did.
    """

    def __init__(self, scope: str | None = None) -> None:
        self.model = bearer.model
        self.scheme_name = bearer.scheme_name
        self.scope = scope

    async def __call__(self, request: Request) -> apikey_service.Client:
        """Authenticate the request's bearer key and check the scope."""
        return await authenticate(request, self.scope)


def require_scope(scope: str) -> ApiKeyAuth:
    """Return the dependency that authenticates and then requires ``scope`` (403 without it)."""
    return ApiKeyAuth(scope)


def actor_of(client: apikey_service.Client) -> audit_service.Actor:
    """The audit actor of an API client."""
    return audit_service.Actor(ActorType.api_key, str(client.api_key_id))


ClinicClient = Annotated[apikey_service.Client, Depends(ApiKeyAuth())]
ScreeningReader = Annotated[
    apikey_service.Client, Depends(require_scope(apikey_service.SCREENINGS_READ))
]
ScreeningWriter = Annotated[
    apikey_service.Client, Depends(require_scope(apikey_service.SCREENINGS_WRITE))
]
AuditReader = Annotated[apikey_service.Client, Depends(require_scope(apikey_service.AUDIT_READ))]
