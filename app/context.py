"""The clock and app-state access: ``AppContext``, the one way to read app state, and its deps.

``create_app`` builds one ``AppContext`` and keeps it in ``app.state.context``; everything
else reads app state through ``context_of(request)`` or the dependency aliases below. Objects
a domain owns (the API-key cache, the stored rule-pack cache, the form's catalogues) live in
its ``components``, typed by their class, so this module imports no domain.
"""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Protocol, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Request
from sqlalchemy.orm import Session

from app.crypto import KeyRing
from app.db.unit import UnitOfWork
from app.engine import Ruleset
from app.metrics import Metrics
from app.settings import Settings

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


@dataclass(slots=True)
class AppContext:
    """Everything an app's requests share, built once by ``create_app``.

    Attributes:
        settings: The app's configuration.
        unit: The unit of work every transaction goes through (``app/db/unit.py``).
        keyring: The data-key ring that encrypts and decrypts PHI.
        clock: The time source.
        metrics: The Prometheus collectors.
        schema_heads: The migration heads this code expects (``/readyz``).
        ruleset: The rule pack, loaded by the lifespan (None before startup).
        components: Domain-owned shared objects by class (``component``).
    """

    settings: Settings
    unit: UnitOfWork
    keyring: KeyRing
    clock: Clock
    metrics: Metrics
    schema_heads: set[str]
    ruleset: Ruleset | None = None
    components: dict[type, object] = field(default_factory=dict)

    def loaded_ruleset(self) -> Ruleset:
        """The rule pack loaded at startup."""
        assert self.ruleset is not None, "the lifespan has not loaded the rule pack"
        return self.ruleset

    def component(self, kind: type[T], make: Callable[[], T] | None = None) -> T:
        """The shared ``kind`` object; made by ``make`` on first use if given."""
        found = self.components.get(kind)
        if found is None:
            if make is None:
                raise LookupError(f"no {kind.__name__} in this app")
            found = self.components.setdefault(kind, make())
        assert isinstance(found, kind)
        return found


def context_of(request: Request) -> AppContext:
    """The request's app's context."""
    return app_context(request.app)


def app_context(app: FastAPI) -> AppContext:
    """An app's context (set by ``create_app``)."""
    context: AppContext = app.state.context
    return context


def public_base_url(request: Request) -> str:
    """Where clients reach the service (no trailing slash): the one base of every link we build.

    ``SCREENING_PUBLIC_BASE_URL`` (required, https, in production), never the request's
    ``Host`` header, which a caller controls. Only dev and test, without the setting, fall
    back to the request's own base URL.
    """
    configured = context_of(request).settings.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


def request_id_of(request: Request) -> str:
    """The request id set by the observability middleware (also the X-Request-ID header)."""
    return str(request.scope.get("state", {}).get("request_id", ""))


def note_clinic(request: Request, clinic_id: uuid.UUID) -> None:
    """Record the caller's clinic for the request's access log line (an id, not PHI)."""
    request.scope.setdefault("state", {})["clinic_id"] = str(clinic_id)


def get_session(request: Request) -> Iterator[Session]:
    """The request's one session and transaction, committed before the response is sent."""
    with context_of(request).unit.session() as session:
        yield session


# Dependencies that only read app or request state are ``async def``: each ``def`` dependency
# costs a threadpool round trip per request (see bench/README.md), and these never block.


async def get_ruleset(request: Request) -> Ruleset:
    """The rule pack loaded at startup."""
    return context_of(request).loaded_ruleset()


async def get_keyring(request: Request) -> KeyRing:
    """The data-key ring used to encrypt and decrypt PHI."""
    return context_of(request).keyring


async def get_clock(request: Request) -> Clock:
    """The clock of this app (a fixed one in tests)."""
    return context_of(request).clock


async def get_request_id(request: Request) -> str:
    """The request id set by the observability middleware (also the X-Request-ID header)."""
    return request_id_of(request)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
RulesetDep = Annotated[Ruleset, Depends(get_ruleset)]
KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]
ClockDep = Annotated[Clock, Depends(get_clock)]
RequestIdDep = Annotated[str, Depends(get_request_id)]


async def get_unit(request: Request) -> UnitOfWork:
    """The unit of work, for a sync endpoint that opens its one transaction itself.

    For endpoints that write on every call (every audited read): the whole transaction then
    runs in the endpoint's one threadpool call, instead of three (``SessionDep`` enters and
    exits in threadpool calls of their own; bench/README.md). The commit happens before the
    endpoint returns, so before the response is sent, and a failed commit raises.
    """
    return context_of(request).unit


UnitDep = Annotated[UnitOfWork, Depends(get_unit)]
