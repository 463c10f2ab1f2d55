"""`screening apikey`: create, list, revoke and rotate clinic API keys (a key is printed once)."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from app.apikey import lifecycle as key_lifecycle
from app.apikey import service as apikey_service
from app.cli.options import (
    DURATION_HELP,
    ActorOption,
    database_session,
    operator,
    parse_duration,
    parse_expiry,
    run_in_session,
)
from app.errors import ValidationFailed

_SCOPE_LIST = ", ".join(apikey_service.SCOPES)
_DEFAULT_LIST = ", ".join(apikey_service.DEFAULT_SCOPES)
app = typer.Typer(help="Clinic API keys.", no_args_is_help=True)
ExpiresInOption = Annotated[
    str | None,
    typer.Option(help=f"Lifetime of the key, or `never` (the default). {DURATION_HELP}."),
]
KeyIdArgument = Annotated[
    uuid.UUID, typer.Argument(metavar="ID", help="The key's id (`apikey list`).")
]


def parse_scopes(values: list[str] | None) -> tuple[str, ...]:
    """Split ``--scopes a,b --scopes c`` into scopes; the defaults when none are given."""
    scopes = [part.strip() for value in values or [] for part in value.split(",")]
    return tuple(scope for scope in scopes if scope) or apikey_service.DEFAULT_SCOPES


def _expiry(now: datetime, lifetime: timedelta | None) -> datetime | None:
    return None if lifetime is None else now + lifetime


@app.command("create")
def create(
    clinic: Annotated[str, typer.Option(help="An existing clinic's name (exact).")],
    scopes: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Repeatable or comma-separated: {_SCOPE_LIST} (default: {_DEFAULT_LIST})."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "default",
    create_clinic: Annotated[
        bool, typer.Option("--create-clinic", help="Create the clinic if it does not exist.")
    ] = False,
    expires_in: ExpiresInOption = None,
    actor: ActorOption = None,
) -> None:
    """Create an API key; only its hash is stored, so the printed key cannot be shown again."""
    now, who = datetime.now(UTC), operator(actor)
    expires_at = _expiry(now, parse_expiry(expires_in, default=None))
    try:
        with database_session() as session:
            created = apikey_service.create(
                session, clinic_name=clinic, scopes=parse_scopes(scopes), name=name, actor=who,
                now=now, create_clinic=create_clinic, expires_at=expires_at,
            )  # fmt: skip
    except ValidationFailed as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(2) from None
    verb = "Created clinic" if created.is_new_clinic else "Clinic"
    until = "" if expires_at is None else f", expires {apikey_service.iso(expires_at)}"
    typer.echo(
        f"{verb} {clinic!r} ({created.clinic_id}); new API key {created.api_key_id}{until}.",
        err=True,
    )
    typer.echo("Store the key now: it is shown only once.", err=True)
    typer.echo(created.key)


def _table(views: list[key_lifecycle.KeyView], now: datetime) -> str:
    """One line per key: id, state, name, scopes, created, last used, expires, revoked."""
    lines = ["ID  STATE  NAME  SCOPES  CREATED  LAST_USED  EXPIRES  REVOKED"]
    for view in views:
        moments = (view.created_at, view.last_used_at, view.expires_at, view.revoked_at)
        times = [apikey_service.iso(moment) or "-" for moment in moments]
        lines.append("  ".join([str(view.id), view.state(now), view.name, ",".join(view.scopes)]))
        lines[-1] += "  " + "  ".join(times)
    return "\n".join(lines)


def print_keys(views: list[key_lifecycle.KeyView], *, as_json: bool, empty: str) -> None:
    """Print keys as a table (or JSON); never a key or its hash."""
    now = datetime.now(UTC)
    if as_json:
        typer.echo(json.dumps([view.to_dict(now) for view in views], indent=2))
    elif not views:
        typer.echo(empty, err=True)
    else:
        typer.echo(_table(views, now))


@app.command("list")
def list_keys(
    clinic: Annotated[str, typer.Option(help="The clinic's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a clinic's API keys (id, name, scopes, created, last used, expires, revoked)."""
    views = run_in_session(
        lambda session: key_lifecycle.list_clinic_keys(session, clinic_name=clinic)
    )
    print_keys(views, as_json=as_json, empty=f"Clinic {clinic!r} has no API keys.")


@app.command("revoke")
def revoke(key_id: KeyIdArgument, actor: ActorOption = None) -> None:
    """Revoke an API key now: servers refuse it within seconds (at once where revoked)."""
    who = operator(actor)
    view = run_in_session(
        lambda session: key_lifecycle.revoke(
            session, key_id=key_id, actor=who, now=datetime.now(UTC)
        )
    )
    typer.echo(f"Revoked API key {view.id} ({view.name!r}).")


@app.command("rotate")
def rotate(
    key_id: KeyIdArgument,
    grace: Annotated[
        str, typer.Option(help=f"How long the old key keeps working. {DURATION_HELP}; 0s: none.")
    ] = "24h",
    expires_in: ExpiresInOption = None,
    actor: ActorOption = None,
) -> None:
    """Replace an API key with a new one (same scopes, printed once); the old one works --grace."""
    who, now = operator(actor), datetime.now(UTC)
    overlap = parse_duration(grace, option="--grace", allow_zero=True)
    expires_at = _expiry(now, parse_expiry(expires_in, default=None))
    rotated = run_in_session(
        lambda session: key_lifecycle.rotate(
            session, key_id=key_id, grace=overlap, expires_at=expires_at, actor=who, now=now
        )
    )
    stops = apikey_service.iso(rotated.old_stops_at)
    typer.echo(
        f"New API key {rotated.created.api_key_id}; the old key {rotated.old_key_id} stops "
        f"working at {stops}. Store the new key now: it is shown only once.",
        err=True,
    )
    typer.echo(rotated.created.key)
