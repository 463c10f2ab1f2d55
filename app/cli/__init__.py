"""The `screening` command: one Typer group per file, registered here."""

import typer

from app.cli import apikey, audit, db, evaluate, form, keys, rules, serve, user

app = typer.Typer(
    name="screening",
    help="Candidacy screening for low-dose ketamine infusion: rules, service and audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(rules.app, name="rules")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")
app.command("evaluate")(evaluate.evaluate)
app.command("serve")(serve.serve)
app.add_typer(db.app, name="db")
app.add_typer(apikey.app, name="apikey")
app.add_typer(user.app, name="user")
app.add_typer(form.app, name="form")


def main() -> None:
    """Run the command line."""
    app()
