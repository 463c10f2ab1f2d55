"""`screening user`: create physicians and admins, personal API tokens, and TOTP set-up."""

import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from app.account import lifecycle as account_lifecycle
from app.account import service as account_service
from app.audit import service as audit_service
from app.cli import token as token_cli
from app.cli.db import fail, settings_or_exit
from app.cli.options import ActorOption, operator, run_in_session
from app.crypto import KeyRing, KeySpecError
from app.db.models import Role

app = typer.Typer(help="Physician and admin accounts.", no_args_is_help=True)
app.add_typer(token_cli.app, name="token")
EmailOption = Annotated[str, typer.Option(help="The user's sign-in email address.")]


class RoleOption(StrEnum):
    """The --role choices."""

    physician = "physician"
    admin = "admin"


def _keyring() -> KeyRing:
    settings = settings_or_exit()
    if settings.data_keys is None:
        fail("SCREENING_DATA_KEY is not set (run `screening serve` once in dev, or set it)")
    try:
        return KeyRing.parse(settings.data_keys.get_secret_value())
    except KeySpecError as error:
        fail(f"SCREENING_DATA_KEY is invalid: {error}")


@app.command("create")
def create(
    clinic: Annotated[
        str, typer.Option(help="An existing clinic's name (`screening apikey create` makes one).")
    ],
    email: Annotated[str, typer.Option(help="Sign-in email address (unique).")],
    role: Annotated[RoleOption, typer.Option(help="physician (signs off) or admin.")],
    name: Annotated[str | None, typer.Option(help="Name shown on reviews.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    actor: ActorOption = None,
) -> None:
    """Create a user; prints a generated one-time password unless --password-stdin is given.

    A generated password must be changed at the first sign-in. Exits 1 for an unknown clinic
    or an email address already in use.
    """
    who = operator(actor)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    created = run_in_session(
        lambda session: account_service.create_user(
            session,
            clinic_name=clinic,
            email=email,
            role=Role(role.value),
            display_name=name,
            password=password,
            actor=who,
            now=datetime.now(UTC),
        )
    )
    typer.echo(f"Created {role.value} {email} ({created.user_id}) in clinic {clinic!r}.", err=True)
    if created.password is not None:
        typer.echo("One-time password (shown only once; sign in and keep it safe):", err=True)
        typer.echo(created.password)


@app.command("totp")
def totp(
    email: Annotated[str, typer.Option(help="The user to set up.")], actor: ActorOption = None
) -> None:
    """Give a user a new authenticator secret; prints the otpauth:// URI to import."""
    keyring, who = _keyring(), operator(actor)
    uri = run_in_session(
        lambda session: account_service.enroll_totp(
            session, email=email, keyring=keyring, actor=who
        )
    )
    typer.echo("Add this to the user's authenticator app (as a link or QR code):", err=True)
    typer.echo(uri)


@app.command("require-totp")
def require_totp(
    clinic: Annotated[str, typer.Option(help="Clinic name.")],
    off: Annotated[bool, typer.Option("--off", help="Stop requiring a second factor.")] = False,
    actor: ActorOption = None,
) -> None:
    """Require an authenticator code at sign-in for every user of a clinic (or stop, --off)."""
    who = operator(actor)
    run_in_session(
        lambda session: account_service.require_totp(
            session, clinic_name=clinic, is_required=not off, actor=who
        )
    )
    state = "no longer requires" if off else "now requires"
    typer.echo(f"Clinic {clinic!r} {state} an authenticator code at sign-in.")


@app.command("disable")
def disable(email: EmailOption, actor: ActorOption = None) -> None:
    """Disable a user: no sign-in; every web session ends and every personal token is revoked."""
    who = operator(actor)
    ended = run_in_session(
        lambda session: account_lifecycle.disable(
            session, email=email, actor=who, now=datetime.now(UTC)
        )
    )
    typer.echo(
        f"Disabled {email}: {ended.sessions} web session(s) ended, "
        f"{ended.tokens} personal token(s) revoked."
    )


@app.command("enable")
def enable(email: EmailOption, actor: ActorOption = None) -> None:
    """Let a disabled user sign in again (ended sessions and revoked tokens stay ended)."""
    who = operator(actor)
    run_in_session(lambda session: account_lifecycle.enable(session, email=email, actor=who))
    typer.echo(f"Enabled {email}; they can sign in again (create a new token if they need one).")


DEMO_PHYSICIAN = "physician@demo.clinic"


def create_demo_physician(
    session: Session, *, clinic_name: str, actor: audit_service.Actor
) -> account_service.CreatedUser:
    """First-run bootstrap: a demo physician with a generated one-time password."""
    return account_service.create_user(
        session,
        clinic_name=clinic_name,
        email=DEMO_PHYSICIAN,
        role=Role.physician,
        display_name="Dr Demo",
        actor=actor,
        now=datetime.now(UTC),
    )


def sign_in_instructions(created: account_service.CreatedUser, base_url: str) -> str:
    """How to sign in as the demo physician (printed once by `screening serve`)."""
    return (
        f"\nCreated the demo physician. Review flagged screenings at {base_url}/review\n"
        f"  email:    {DEMO_PHYSICIAN}\n  password: {created.password} (shown only this once)\n"
        f"Add colleagues with `screening user create --clinic NAME --email E --role physician`.\n"
    )
