"""`screening user token`: create, list and revoke a user's personal API tokens."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer

from app.account import lifecycle as account_lifecycle
from app.account import tokens as account_tokens
from app.cli.apikey import print_keys
from app.cli.options import DURATION_HELP, ActorOption, operator, parse_expiry, run_in_session

app = typer.Typer(
    help="Personal API tokens: they act as their user, on the review API only.",
    no_args_is_help=True,
)
EmailOption = Annotated[str, typer.Option(help="The user the token acts as.")]


@app.command("create")
def create(
    email: EmailOption,
    expires_in: Annotated[
        str | None,
        typer.Option(help=f"Lifetime, or `never` (default: 90d). {DURATION_HELP}."),
    ] = None,
    actor: ActorOption = None,
) -> None:
    """Create a personal API token for a user; printed alone on the last line of stdout."""
    who, now = operator(actor), datetime.now(UTC)
    lifetime = parse_expiry(expires_in, default=account_lifecycle.PERSONAL_TOKEN_LIFETIME)
    expires_at = None if lifetime is None else now + lifetime
    plaintext = run_in_session(
        lambda session: account_tokens.create_token(
            session, email=email, actor=who, now=now, expires_at=expires_at
        )
    )
    until = "never expires" if expires_at is None else f"expires {expires_at:%Y-%m-%d %H:%M} UTC"
    typer.echo(
        f"Personal API token ({until}; shown only once; send it as `Authorization: Bearer`; "
        "it works on the review API only):",
        err=True,
    )
    typer.echo(plaintext)


@app.command("list")
def list_tokens(
    email: EmailOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a user's personal tokens (id, name, scopes, created, last used, expires, revoked)."""
    views = run_in_session(lambda session: account_lifecycle.user_tokens(session, email=email))
    print_keys(views, as_json=as_json, empty=f"{email} has no personal tokens.")


@app.command("revoke")
def revoke(
    token_id: Annotated[
        uuid.UUID, typer.Argument(metavar="ID", help="The token's id (`user token list`).")
    ],
    email: EmailOption,
    actor: ActorOption = None,
) -> None:
    """Revoke one of a user's personal tokens now (their other tokens and sessions stay)."""
    who = operator(actor)
    view = run_in_session(
        lambda session: account_lifecycle.revoke_token(
            session, email=email, token_id=token_id, actor=who, now=datetime.now(UTC)
        )
    )
    typer.echo(f"Revoked personal token {view.id} of {email}.")
