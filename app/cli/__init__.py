"""The `screening` command: one Typer group per file, registered here."""

import typer

from app.cli import audit, evaluate, keys, rules

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


def main() -> None:
    """Run the command line."""
    app()
