"""Every Annotated dependency alias: SessionDep, TransactionDep, RulesetDep, ClinicClient, ..."""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Annotated, Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.base import SecurityBase
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.account import service as account_service
from app.account import sessions
from app.apikey import service as apikey_service
from app.audit import denials
from app.audit import service as audit_service
from app.crypto import KeyRing
from app.db.models import ActorType
from app.db.session import LoopWriter, core_transaction, session_scope
from app.engine import Ruleset
from app.errors import Forbidden, Unauthorized
from app.rulepack.service import RulesetCache

T = TypeVar("T")


class Clock(Protocol):
    """The time source of a request; tests pass a fixed one to ``create_app``."""

    def now(self) -> datetime:
        """Return the current aware UTC datetime."""
        ...

    def today(self) -> date:
        """Return today's date in the clinic's time zone (the screening's as-of date)."""
        ...


@dataclass(frozen=True, slots=True)
class SystemClock:
    """The real clock; "today" is computed in the clinic's time zone."""

    timezone: ZoneInfo

    def now(self) -> datetime:
        """Return the current aware UTC datetime."""
        return datetime.now(UTC)

    def today(self) -> date:
        """Return today's date in the clinic's time zone."""
        return datetime.now(self.timezone).date()


class KeyCache:
    """Authenticated keys for a few seconds: a database lookup per request costs far more.

    A revoked key stays usable for at most ``ttl_seconds`` (documented in the README).
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


def get_session(request: Request) -> Iterator[Session]:
    """One session and transaction per request, committed before the response is sent."""
    with session_scope(request.app.state.sessionmaker) as session:
        yield session


class Transaction:
    """The request's one transaction, opened by the sync endpoint itself.

    ``with transaction as session:`` commits on success and rolls back on any exception.

    For endpoints that write on every call (every audited read): the
    whole transaction then runs in the endpoint's one threadpool call, instead of three
    (``SessionDep`` enters and exits in threadpool calls of their own; bench/README.md). The
    commit happens before the endpoint returns, so before the response is sent, and a failed
    commit raises instead of becoming a 2xx.
    """

    __slots__ = ("_factory", "_scope")

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._scope: AbstractContextManager[Session] | None = None

    def __enter__(self) -> Session:
        """Begin: a new session from the app's sessionmaker."""
        if self._scope is not None:
            raise RuntimeError("the request's transaction is already open")
        self._scope = session_scope(self._factory)
        return self._scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Commit, or roll back and re-raise."""
        scope, self._scope = self._scope, None
        assert scope is not None
        return scope.__exit__(exc_type, exc, tb)


async def get_transaction(request: Request) -> Transaction:
    """The request's transaction, to be opened in a sync endpoint (see ``Transaction``)."""
    return Transaction(request.app.state.sessionmaker)


# Dependencies that only read app or request state are ``async def``: each ``def`` dependency
# costs a threadpool round trip per request (see bench/README.md), and these never block.


def ruleset_of(request: Request) -> Ruleset:
    """The rule pack loaded at startup (``RulesetDep`` without a dependency to solve)."""
    ruleset: Ruleset = request.app.state.ruleset
    return ruleset


def clock_of(request: Request) -> Clock:
    """The clock of this app (``ClockDep`` without a dependency to solve)."""
    clock: Clock = request.app.state.clock
    return clock


def keyring_of(request: Request) -> KeyRing:
    """The data-key ring (``KeyRingDep`` without a dependency to solve)."""
    keyring: KeyRing = request.app.state.keyring
    return keyring


def request_id_of(request: Request) -> str:
    """The request id (``RequestIdDep`` without a dependency to solve)."""
    return str(request.scope.get("state", {}).get("request_id", ""))


POSTGRES_WRITERS = 3
"""Screening writes a process runs at once on PostgreSQL (``run_write``).

Every write appends to the audit chain under the chain head's row lock, so writes commit one
at a time whatever their number. Three let one hold the lock while the others evaluate,
encrypt and insert. With one thread per request (16 under the bench's load), the others only
waited on the lock, each holding a pool connection and competing for the GIL with the
thread that held it. Measured with ``bench/api.py --postgres`` (bench/README.md): writes
without a key went from 410-455 to 600 req/s, and their p99 from 130-200 ms to 56 ms.
"""


async def run_write(request: Request, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in the request's one transaction, committed before this returns.

    On SQLite, on the event loop through the app's ``LoopWriter`` (``app/db/session.py``
    says why); on PostgreSQL, whose statements are network round trips and whose chain-head
    lock may be held by another worker process, in a worker thread with a pooled connection,
    at most ``POSTGRES_WRITERS`` at once (the app's ``write_limiter``). ``work`` must not
    await: it runs start to commit in one go.
    """
    writer: LoopWriter | None = request.app.state.loop_writer
    if writer is not None:
        with writer.transaction() as connection:
            return work(connection)

    bind = request.app.state.sessionmaker.kw["bind"]

    def in_thread() -> T:
        with core_transaction(bind) as connection:
            return work(connection)

    limiter: anyio.CapacityLimiter | None = request.app.state.write_limiter
    return await anyio.to_thread.run_sync(in_thread, limiter=limiter)


async def get_ruleset(request: Request) -> Ruleset:
    """The rule pack loaded at startup."""
    return ruleset_of(request)


async def get_stored_rulesets(request: Request) -> RulesetCache:
    """Stored rule packs rebuilt by sha256 (for explaining screenings made under old packs)."""
    rulesets: RulesetCache = request.app.state.rulesets
    return rulesets


async def get_keyring(request: Request) -> KeyRing:
    """The data-key ring used to encrypt and decrypt PHI."""
    return keyring_of(request)


async def get_clock(request: Request) -> Clock:
    """The clock of this app (a fixed one in tests)."""
    return clock_of(request)


async def get_request_id(request: Request) -> str:
    """The request id set by the observability middleware (also the X-Request-ID header)."""
    return request_id_of(request)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
TransactionDep = Annotated[Transaction, Depends(get_transaction)]
RulesetDep = Annotated[Ruleset, Depends(get_ruleset)]
StoredRulesetsDep = Annotated[RulesetCache, Depends(get_stored_rulesets)]
KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]
ClockDep = Annotated[Clock, Depends(get_clock)]
RequestIdDep = Annotated[str, Depends(get_request_id)]

_bearer = HTTPBearer(
    auto_error=False,
    description="A clinic API key: `Authorization: Bearer sk_...` (`screening apikey create`).",
)


def note_clinic(request: Request, clinic_id: uuid.UUID) -> None:
    """Record the caller's clinic for the request's access log line (an id, not PHI)."""
    request.scope.setdefault("state", {})["clinic_id"] = str(clinic_id)


def note_api_client(request: Request, client: apikey_service.Client) -> None:
    """Record an authenticated API client: its clinic for the access line, itself for denials.

    By ``ApiKeyAuth`` and by the shortcuts (``app/shortcut.py``), before any scope check.
    """
    note_clinic(request, client.clinic_id)
    denials.remember(request, client)


def _look_up_key(request: Request, key: str) -> apikey_service.Client | None:
    with session_scope(request.app.state.sessionmaker) as session:
        return apikey_service.authenticate(session, key=key)


def _bearer_key(authorization: str) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header value; None for anything else."""
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


class ApiKeyAuth(SecurityBase):
    """The clinic API key dependency: bearer token → cached client → scope check, in one step.

    One ``async`` dependency instead of a chain (bearer → authenticate → scope check): FastAPI
    solves every dependency of every request, and the chain was most of ``POST /v1/evaluate``'s
    framework cost (bench/README.md). It is a security scheme itself, so ``/docs`` shows the
    same ``HTTPBearer`` scheme as ``HTTPBearer()`` did. 401 when the key is missing, unknown
    or revoked; 403 without ``scope``. A cached key costs neither a threadpool round trip nor
    a session; a key not in the cache is looked up in the threadpool, in a short transaction
    of its own.
    """

    def __init__(self, scope: str | None = None) -> None:
        self.model = _bearer.model
        self.scheme_name = _bearer.scheme_name
        self.scope = scope

    def cached(self, cache: KeyCache, authorization: str | None) -> apikey_service.Client | None:
        """The cached client of a bearer key that has this scope; None: ask ``__call__``.

        No side effects: the shortcuts (``app/shortcut.py``) admit a request with it.
        """
        key = _bearer_key(authorization or "")
        client = None if key is None else cache.get(key)
        if client is None or (self.scope is not None and self.scope not in client.scopes):
            return None
        return client

    async def __call__(self, request: Request) -> apikey_service.Client:
        """Authenticate the request's bearer key and check the scope."""
        key = _bearer_key(request.headers.get("Authorization", ""))
        if key is None:
            raise Unauthorized()
        cache: KeyCache = request.app.state.key_cache
        client = cache.get(key)
        if client is None:
            client = await run_in_threadpool(_look_up_key, request, key)
            if client is None:
                raise Unauthorized("The API key is unknown or revoked.")
            cache.put(key, client)
        note_api_client(request, client)
        if self.scope is not None and self.scope not in client.scopes:
            raise Forbidden(f"This API key lacks the {self.scope!r} scope.")
        return client


def require_scope(scope: str) -> ApiKeyAuth:
    """Return the dependency that authenticates and then requires ``scope`` (403 without it)."""
    return ApiKeyAuth(scope)


ClinicClient = Annotated[apikey_service.Client, Depends(ApiKeyAuth())]
ScreeningReader = Annotated[
    apikey_service.Client, Depends(require_scope(apikey_service.SCREENINGS_READ))
]
screening_writer = require_scope(apikey_service.SCREENINGS_WRITE)
"""The ``screenings:write`` check (``ScreeningWriter``; the shortcuts admit with it too)."""
ScreeningWriter = Annotated[apikey_service.Client, Depends(screening_writer)]
AuditReader = Annotated[apikey_service.Client, Depends(require_scope(apikey_service.AUDIT_READ))]


def audited(
    action: str,
    target_type: str | None = None,
    *,
    path_param: str | None = None,
    query_param: str | None = None,
) -> dict[str, Any]:
    """``openapi_extra`` of a route whose denied and failed requests are audited as ``action``.

    Its successes are audited by its service; see ``app.audit.denials`` for the failures.
    """
    return denials.marker(action, target_type, path_param=path_param, query_param=query_param)


def actor_of(client: apikey_service.Client) -> audit_service.Actor:
    """The audit actor of an API client."""
    return audit_service.Actor(ActorType.api_key, str(client.api_key_id))


# --- Physicians: browser sessions (review pages) and personal tokens (review API) ----------

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class SignInRequired(Exception):
    """No valid browser session: the HTML handler redirects to the sign-in page.

    ``had_session``: the browser sent a session cookie that is no longer valid (idle or
    absolute timeout, signed out elsewhere), so the page can say the session has ended.
    """

    def __init__(self, *, had_session: bool = False) -> None:
        super().__init__("sign-in required")
        self.had_session = had_session


class PasswordChangeRequired(Exception):
    """Signed in with a one-time password: the HTML handler redirects to change it."""


def session_cookie(request: Request) -> tuple[str, bool]:
    """The session cookie's name and Secure flag.

    ``__Host-session`` with Secure everywhere except plain http to a loopback address
    (development), where browsers may not send a Secure cookie back.
    """
    is_plain_loopback = request.url.scheme == "http" and request.url.hostname in _LOOPBACK
    return ("session", False) if is_plain_loopback else ("__Host-session", True)


def _web_user(request: Request, session: Session, clock: Clock) -> sessions.WebUser | None:
    token = request.cookies.get(session_cookie(request)[0])
    return None if token is None else sessions.resume(session, token=token, now=clock.now())


def get_signed_in_user(request: Request, session: SessionDep, clock: ClockDep) -> sessions.WebUser:
    """The signed-in user, even one who must still change a one-time password.

    Only for the change-password page and sign-out; SignInRequired without a session.
    """
    web_user = _web_user(request, session, clock)
    if web_user is None:
        had_session = session_cookie(request)[0] in request.cookies
        raise SignInRequired(had_session=had_session)
    return web_user


async def get_web_user(
    web_user: Annotated[sessions.WebUser, Depends(get_signed_in_user)],
) -> sessions.WebUser:
    """The signed-in user of a review page; SignInRequired (→ sign-in page) otherwise.

    PasswordChangeRequired (→ change-password page) while a one-time password is in use.
    """
    if web_user.must_change_password:
        raise PasswordChangeRequired()
    return web_user


def get_reviewer(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> account_service.Principal:
    """A physician, by personal token or by session (with ``X-CSRF-Token`` on writes).

    401 without either; 403 for a clinic intake key, a bad CSRF token or a non-physician.
    """
    if credentials is not None:
        principal = account_service.token_principal(session, token=credentials.credentials)
        if principal is None:
            raise Unauthorized("The token is unknown or revoked.")
        denials.remember(request, principal)
    else:
        web_user = _web_user(request, session, clock)
        if web_user is None:
            raise Unauthorized("Sign in, or send a personal token as a Bearer token.")
        denials.remember(request, web_user.principal)
        if web_user.must_change_password:
            raise Forbidden("Change your one-time password on the review pages first.")
        if request.method not in {"GET", "HEAD"} and not sessions.is_valid_csrf(
            web_user, request.headers.get("X-CSRF-Token")
        ):
            raise Forbidden("The X-CSRF-Token header is missing or wrong.")
        principal = web_user.principal
    note_clinic(request, principal.clinic_id)
    if not principal.is_physician:
        raise Forbidden("Only a physician can sign off screenings.")
    return principal


WebUserDep = Annotated[sessions.WebUser, Depends(get_web_user)]
SignedInDep = Annotated[sessions.WebUser, Depends(get_signed_in_user)]
Reviewer = Annotated[account_service.Principal, Depends(get_reviewer)]
