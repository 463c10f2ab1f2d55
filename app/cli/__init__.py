"""The `screening` command: one Typer group per file, registered here."""

from typing import Any

import typer
from sqlalchemy import exc as sa_exc
from typer.core import TyperGroup
from typer.exceptions import TyperException

from app.cli import (
    apikey,
    audit,
    cds,
    db,
    evaluate,
    form,
    keys,
    policy,
    rules,
    serve,
    user,
    webhook,
)
from app.db import migrate
from app.logs import exception_fields
from app.settings import get_settings


def _first_line(error: BaseException | None) -> str:
    lines = str(error or "").strip().splitlines()
    return lines[0] if lines else ""


def _database() -> str:
    """The configured database URL (password hidden) and a space, or nothing if unset."""
    try:
        return f"{migrate.redact_url(get_settings().database_url)} "
    except Exception:  # settings that do not load have been reported by the command
        return ""


class _Screening(TyperGroup):
    """The root command: an error becomes one clear line on standard error and exit 1.

    A database that cannot be reached or opened is an operator's everyday mistake, not a
    crash: it gets the driver's connection message and what to check, not a traceback. Any
    other unexpected exception is a bug: it is reported by type and code locations only,
    never by its message, which may hold values read from the database or a file (the rule
    for log lines, ``app.logs``). Typer's own exits, aborts and usage errors pass unchanged.
    """

    def invoke(self, ctx: Any) -> Any:
        """Run the command; turn an exception into ``error: ...`` and exit status 1."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
            # Connection-level errors: the driver's message names the file or the server,
            # never a statement's values (and parameters are hidden: app.db.engine).
            typer.echo(
                f"error: the database {_database()}could not be used: {_first_line(error.orig)}\n"
                "Check SCREENING_DATABASE_URL, that the database server is running, and "
                "that `screening db upgrade` has been run.",
                err=True,
            )
        except Exception as error:
            fields = exception_fields(error)
            typer.echo(
                f"error: unexpected {fields['exc_type']} (a bug; its message is not shown, as "
                "it may hold patient data). Where it happened:",
                err=True,
            )
            for frame in fields["exc_frames"][-8:]:
                typer.echo(f"  {frame}", err=True)
        raise typer.Exit(1)


app = typer.Typer(
    name="screening",
    cls=_Screening,
    help="Candidacy screening for low-dose ketamine infusion: rules, service and audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for command in (policy.publish, policy.history, policy.rollback, policy.impact):
    rules.app.command(command.__name__)(command)
app.add_typer(rules.app, name="rules")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")
app.command("evaluate")(evaluate.evaluate)
app.command("serve")(serve.serve)
app.add_typer(db.app, name="db")
app.add_typer(apikey.app, name="apikey")
app.add_typer(user.app, name="user")
app.add_typer(form.app, name="form")
app.add_typer(cds.app, name="cds")
app.add_typer(webhook.app, name="webhook")


def main() -> None:
    """Run the command line."""
    app()
