"""Clinic API-key auth: the bearer scheme, the key cache, scope checks and their dependencies."""

import threading
import time
from datetime import datetime
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
from app.errors import Forbidden, Unauthorized

bearer = HTTPBearer(
    auto_error=False,
    description="A clinic API key: `Authorization: Bearer sk_...` (`screening apikey create`).",
)
"""The bearer security scheme (``/docs``); physicians' personal tokens use it too."""


class KeyCache:
    """Authenticated keys for two seconds: a database lookup per request costs far more.

    A key revoked by another process (the CLI, another replica) stays usable here for at most
    ``ttl_seconds``; one revoked by this process is dropped at once (``clear``); an expired
    key is refused on its first request after ``expires_at`` (checked on every hit). One
    instance per app, a component of its ``AppContext``.
    """

    def __init__(self, ttl_seconds: float = 2.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[str, tuple[float, apikey_service.Client]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: datetime) -> apikey_service.Client | None:
        """Return the cached client of ``key`` if still fresh and not expired at ``now``."""
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic() or not entry[1].is_live(now):
            return None
        return entry[1]

    def put(self, key: str, client: apikey_service.Client) -> None:
        """Remember ``client`` for ``key``."""
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self._ttl, client)

    def clear(self) -> None:
        """Forget every key: this process has just revoked a credential."""
        with self._lock:
            self._entries.clear()


def forget_credentials(request: Request) -> None:
    """Drop this process's cached keys (after a request revoked a credential)."""
    context_of(request).component(KeyCache).clear()


def note_api_client(request: Request, client: apikey_service.Client) -> None:
    """Record an authenticated API client: its clinic for the access line, itself for denials."""
    note_clinic(request, client.clinic_id)
    denials.remember(request, client)


def _look_up_key(request: Request, key: str, now: datetime) -> apikey_service.Client | None:
    with context_of(request).unit.session() as session:
        return apikey_service.authenticate(session, key=key, now=now)


def _bearer_key(authorization: str) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header value; None for anything else."""
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


PERSONAL_TOKEN_REFUSED = (
    "A personal token works only on the review API (POST /v1/screenings/{id}/reviews and the "
    "reads a review needs); clinic software must use a clinic API key."
)


async def authenticate(
    request: Request, scope: str | None = None, *, allow_personal: bool = False
) -> apikey_service.Client:
    """Authenticate the request's bearer key and check ``scope``.

    401 when the key is missing, unknown, revoked or expired; 429 over the credential's rate
    limit (``ratelimit``); 403 without ``scope``, and 403 for a user's personal token unless
    ``allow_personal`` (the review reads). A cached key
    costs neither a threadpool round trip nor a session; a key not in the cache is looked
    up in the threadpool, in a short transaction of its own.
    """
    key = _bearer_key(request.headers.get("Authorization", ""))
    if key is None:
        raise Unauthorized()
    context = context_of(request)
    cache, now = context.component(KeyCache), context.clock.now()
    client = cache.get(key, now)
    if client is None:
        client = await run_in_threadpool(_look_up_key, request, key, now)
        if client is None:
            raise Unauthorized("The API key is unknown, revoked or expired.")
        cache.put(key, client)
    note_api_client(request, client)
    ratelimit.check(request, client.api_key_id)
    if client.is_personal and not allow_personal:
        raise Forbidden(PERSONAL_TOKEN_REFUSED)
    if scope is not None and scope not in client.scopes:
        raise Forbidden(f"This API key lacks the {scope!r} scope.")
    return client


class ApiKeyAuth(SecurityBase):
    """The clinic API key dependency: ``authenticate`` with a scope, as a security scheme.

    One ``async`` dependency instead of a chain (bearer → authenticate → scope check): FastAPI
    solves every dependency of every request (bench/README.md). It is a security scheme
    itself, so ``/docs`` shows the same ``HTTPBearer`` scheme as ``HTTPBearer()`` did.
    """

    def __init__(self, scope: str | None = None, *, allow_personal: bool = False) -> None:
        self.model = bearer.model
        self.scheme_name = bearer.scheme_name
        self.scope = scope
        self.allow_personal = allow_personal

    async def __call__(self, request: Request) -> apikey_service.Client:
        """Authenticate the request's bearer key and check the scope."""
        return await authenticate(request, self.scope, allow_personal=self.allow_personal)


def require_scope(scope: str) -> ApiKeyAuth:
    """Return the dependency that authenticates and then requires ``scope`` (403 without it)."""
    return ApiKeyAuth(scope)


def actor_of(client: apikey_service.Client) -> audit_service.Actor:
    """The audit actor of an API client: its key, or the user of a personal token."""
    return client.actor


ClinicClient = Annotated[apikey_service.Client, Depends(ApiKeyAuth())]
ScreeningReader = Annotated[
    apikey_service.Client, Depends(require_scope(apikey_service.SCREENINGS_READ))
]
# The reads a review needs (the screening with its ETag, its explanation): a physician's
# personal token is accepted here too, and audited as the physician.
ReviewReader = Annotated[
    apikey_service.Client,
    Depends(ApiKeyAuth(apikey_service.SCREENINGS_READ, allow_personal=True)),
]
ScreeningWriter = Annotated[
    apikey_service.Client, Depends(require_scope(apikey_service.SCREENINGS_WRITE))
]
AuditReader = Annotated[apikey_service.Client, Depends(require_scope(apikey_service.AUDIT_READ))]
