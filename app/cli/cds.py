"""`screening cds configure`: allow an EHR (JWT issuer + JWKS URL) to call the CDS services."""

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

import typer

from app.apikey import service as apikey_service
from app.cds import auth as cds_auth
from app.cli.db import fail
from app.cli.options import ActorOption, database_session, operator
from app.errors import NotFound, ValidationFailed

app = typer.Typer(
    help="CDS Hooks: the EHRs allowed to call the CDS services.", no_args_is_help=True
)


@app.command("configure")
def configure(
    clinic: Annotated[str, typer.Option(help="Name of an existing clinic.")],
    issuer: Annotated[str, typer.Option(help="The EHR's JWT issuer (`iss`), exactly.")],
    jwks_url: Annotated[str, typer.Option(help="The URL of the EHR's JSON Web Key Set.")],
    actor: ActorOption = None,
) -> None:
    """Create or update the CDS client of ISSUER: its JWTs are checked with keys from the URL."""
    if urlsplit(jwks_url).scheme not in ("https", "http") or not urlsplit(jwks_url).netloc:
        fail("--jwks-url must be an http(s) URL (https outside development)")
    now = datetime.now(UTC)
    with database_session() as session:
        found = apikey_service.find_clinic(session, name=clinic)
        if found is None:
            fail(f"no clinic called {clinic!r} (create it with `screening apikey create`)")
        client = cds_auth.configure(
            session,
            clinic_id=found.id,
            issuer=issuer,
            jwks_url=jwks_url,
            actor=operator(actor),
            now=now,
        )
        client_id = client.id
    typer.echo(f"CDS client {client_id}: issuer {issuer!r} of clinic {clinic!r}, keys {jwks_url}")


@app.command("link-user")
def link_user(
    issuer: Annotated[str, typer.Option(help="The EHR's JWT issuer, as configured.")],
    ehr_user: Annotated[str, typer.Option(help="The EHR's user reference (context.userId).")],
    email: Annotated[str, typer.Option(help="Email of a physician of the issuer's clinic.")],
    actor: ActorOption = None,
) -> None:
    """Let that EHR user's card overrides be recorded as this physician's reviews."""
    try:
        with database_session() as session:
            cds_auth.link_practitioner(
                session,
                issuer=issuer,
                ehr_user=ehr_user,
                email=email,
                actor=operator(actor),
                now=datetime.now(UTC),
            )
    except (NotFound, ValidationFailed) as error:
        fail(error.detail)
    typer.echo(f"EHR user {ehr_user!r} of {issuer!r} is now {email}.")
