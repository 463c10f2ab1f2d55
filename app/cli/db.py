"""`screening db upgrade`: apply the Alembic migrations to the configured database."""

from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from app.db import migrate
from app.settings import Settings, describe_error, get_settings

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


def settings_or_exit() -> Settings:
    """Return the settings, or exit 1 with each problem (values never shown)."""
    try:
        return get_settings()
    except ValidationError as error:
        fail(describe_error(error))


def fail(message: str) -> NoReturn:
    """Print ``message`` to standard error and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command("upgrade")
def upgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision (default: the latest, `head`).")
    ] = "head",
) -> None:
    """Apply migrations to SCREENING_DATABASE_URL (run it before `screening serve`)."""
    settings = settings_or_exit()
    migrate.upgrade(migrate.make_config(settings.database_url), revision)
    typer.echo(f"Database {migrate.redact_url(settings.database_url)} upgraded to {revision}.")
