"""Shared by the commands that change credentials: --actor, durations, one transaction.

``--actor`` names the operator in the audit trail (default: the OS user running the command),
so an audit event says who revoked a key, not just that "the CLI" did.
"""

import getpass
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, TypeVar

import typer
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.cli.db import fail, settings_or_exit
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import ActorType
from app.db.unit import session_scope
from app.errors import AppError

T = TypeVar("T")

MAX_ACTOR_LENGTH = 100  # audit_event.actor_id
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION_HELP = "A number and a unit: 30m, 24h, 90d, 2w (s, m, h, d, w)"
MAX_DURATION = timedelta(days=3660)  # ten years: further is "never", and dates stay in range

ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who is acting, recorded in the audit trail (default: the OS user name).",
        show_default=False,
    ),
]


def os_user() -> str:
    """The operating-system user running the command; ``cli`` if the OS cannot say."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return "cli"


def operator(actor: str | None) -> audit_service.Actor:
    """The audit actor of ``--actor`` (the OS user when omitted).

    Exits 2 naming ``--actor`` for an empty name, one longer than 100 characters, or one
    with control characters (it is printed in audit reports).
    """
    name = os_user() if actor is None else actor.strip()
    if not name or len(name) > MAX_ACTOR_LENGTH:
        raise typer.BadParameter(
            f"give a name of 1 to {MAX_ACTOR_LENGTH} characters", param_hint="'--actor'"
        )
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise typer.BadParameter("control characters are not allowed", param_hint="'--actor'")
    return audit_service.Actor(ActorType.cli, name)


def parse_duration(value: str, *, option: str, allow_zero: bool = False) -> timedelta:
    """Parse ``24h``, ``90d``, ``30m``, ``45s`` or ``2w``.

    Raises typer.BadParameter (exit 2, naming ``option``) for anything else, e.g. ``24``
    (no unit), ``1.5h``, ``-1d`` or ``0h`` unless ``allow_zero``.
    """
    match = _DURATION.match(value)
    if match is None:
        raise typer.BadParameter(
            f"{value!r} is not a duration. {DURATION_HELP}.", param_hint=f"'{option}'"
        )
    amount = int(match.group(1))
    if amount == 0 and not allow_zero:
        raise typer.BadParameter("the duration must be longer than zero", param_hint=f"'{option}'")
    duration = timedelta(**{_UNITS[match.group(2).lower()]: amount})
    if duration > MAX_DURATION:
        raise typer.BadParameter("the duration must be at most 10 years", param_hint=f"'{option}'")
    return duration


def parse_expiry(value: str | None, *, default: timedelta | None) -> timedelta | None:
    """``--expires-in``: a duration, ``never``, or (omitted) ``default``."""
    if value is None:
        return default
    if value.strip().lower() == "never":
        return None
    return parse_duration(value, option="--expires-in")


@contextmanager
def database_session() -> Iterator[Session]:
    """A session in one transaction on the configured database; exit 1 if not migrated."""
    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    try:
        if not migrate.is_at_head(migrate.make_config(settings.database_url), engine):
            fail("the database is not migrated: run `screening db upgrade` first")
        with session_scope(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


def run_in_session(action: Callable[[Session], T]) -> T:
    """Run ``action`` in one transaction; on an AppError print it and exit 1 (nothing saved)."""
    try:
        with database_session() as session:
            return action(session)
    except AppError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
