"""`screening form`: a clinic's phone number, who may embed its form, and draft retention."""

from datetime import UTC, datetime
from typing import Annotated

import typer

from app.cli.db import settings_or_exit
from app.cli.options import ActorOption, operator
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.errors import NotFound, ValidationFailed
from app.invitation import service as invitation_service

app = typer.Typer(help="The patient form.", no_args_is_help=True)


@app.command("configure")
def configure(
    clinic: Annotated[str, typer.Option(help="Clinic name, as given to `apikey create`.")],
    phone: Annotated[
        str | None, typer.Option(help="The phone number patients see on every form page.")
    ] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            help="A site allowed to embed the form, e.g. https://www.clinic.example "
            "(repeatable; replaces the list).",
        ),
    ] = None,
    no_origins: Annotated[
        bool, typer.Option("--no-origins", help="Allow no site to embed the form.")
    ] = False,
    actor: ActorOption = None,
) -> None:
    """Set what the form shows and who may frame it; unchanged settings are left as they are."""
    who = operator(actor)
    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    origins = [] if no_origins else origin
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            row = invitation_service.configure_clinic(
                session, clinic_name=clinic, phone=phone, form_origins=origins,
                actor=who,
            )  # fmt: skip
            shown = f"phone {row.phone or '(none)'}; may be framed by: "
            shown += " ".join(row.form_origins) or "no site ('none')"
    except (NotFound, ValidationFailed) as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(f"{clinic}: {shown}")


@app.command("purge-drafts")
def purge_drafts(actor: ActorOption = None) -> None:
    """Delete the saved answers of invitations that expired without being submitted."""
    who = operator(actor)
    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            count = invitation_service.purge_expired_drafts(
                session, now=datetime.now(UTC), actor=who
            )
    finally:
        engine.dispose()
    typer.echo(f"deleted the saved answers of {count} expired, unsubmitted invitation(s)")
