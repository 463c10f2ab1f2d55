"""`screening apikey create`: a new clinic API key, printed once on the last line of stdout."""

from datetime import UTC, datetime
from typing import Annotated

import typer

from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.cli.db import fail, settings_or_exit
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.errors import ValidationFailed

_SCOPE_LIST = ", ".join(apikey_service.SCOPES)
_DEFAULT_LIST = ", ".join(apikey_service.DEFAULT_SCOPES)
app = typer.Typer(help="Clinic API keys.", no_args_is_help=True)


def parse_scopes(values: list[str] | None) -> tuple[str, ...]:
    """Split ``--scopes a,b --scopes c`` into scopes; the defaults when none are given."""
    scopes = [part.strip() for value in values or [] for part in value.split(",")]
    return tuple(scope for scope in scopes if scope) or apikey_service.DEFAULT_SCOPES


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
) -> None:
    """Create an API key; only its hash is stored, so the printed key cannot be shown again."""
    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    if not migrate.is_at_head(migrate.make_config(settings.database_url), engine):
        fail("the database is not migrated: run `screening db upgrade` first")
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            created = apikey_service.create(
                session,
                clinic_name=clinic,
                scopes=parse_scopes(scopes),
                name=name,
                actor=audit_service.Actor.cli(),
                now=datetime.now(UTC),
                create_clinic=create_clinic,
            )
    except ValidationFailed as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    verb = "Created clinic" if created.is_new_clinic else "Clinic"
    typer.echo(
        f"{verb} {clinic!r} ({created.clinic_id}); new API key {created.api_key_id}.", err=True
    )
    typer.echo("Store the key now: it is shown only once.", err=True)
    typer.echo(created.key)
