"""`screening evaluate`: print the result JSON for an answers file; touches no database."""

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from app.engine import AnswerErrors, RulesetError, load_ruleset, validate_answers
from app.engine import evaluate as evaluate_answers
from app.settings import get_settings


def evaluate(
    file: Annotated[str, typer.Argument(help="Answers JSON file, or - for standard input.")],
    questionnaire: Annotated[
        str | None, typer.Option(help="Questionnaire id (default: the configured pack's).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Evaluate as of this date, YYYY-MM-DD (default: today)."),
    ] = None,
) -> None:
    """Evaluate one answers object and print the result JSON; exit 1 on invalid answers.

    The file holds the answers object itself, or a request body {"questionnaire", "answers"}
    that may also name its "as_of" date (--as-of wins).
    """
    option_day = _as_of_date(as_of) if as_of else None
    settings = get_settings()
    try:
        ruleset = load_ruleset(settings.rules_path)
    except RulesetError as error:
        _fail(str(error))
    raw = _read_json(file)
    body = raw if isinstance(raw, dict) and isinstance(raw.get("answers"), dict) else None
    answers_raw = body["answers"] if body is not None else raw
    wanted = questionnaire or (body or {}).get("questionnaire") or ruleset.questionnaire.id
    if wanted != ruleset.questionnaire.id:
        _fail(f"unknown questionnaire {wanted!r}; this pack serves {ruleset.questionnaire.id!r}")
    day = option_day or _body_date(body) or datetime.now(settings.timezone).date()
    try:
        answers = validate_answers(ruleset, answers_raw, as_of=day)
    except AnswerErrors as error:
        for problem in error.errors:
            typer.echo(
                f"error: {problem.item or '(answers)'}: {problem.message} [{problem.code}]",
                err=True,
            )
        _fail(f"invalid answers ({len(error.errors)} problem(s)); nothing was evaluated")
    typer.echo(json.dumps(evaluate_answers(ruleset, answers, as_of=day).to_dict(), indent=2))


def _read_json(file: str) -> Any:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        return json.loads(text)
    except OSError as error:
        _fail(f"cannot read {file}: {error.strerror}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        _fail(f"{file} is not valid JSON: {error}")


def _body_date(body: dict[str, Any] | None) -> date | None:
    value = (body or {}).get("as_of")
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        _fail('the file\'s "as_of" must be a date written YYYY-MM-DD')


def _as_of_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            "must be a date written YYYY-MM-DD", param_hint="--as-of"
        ) from None


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
