"""`screening rules check`: validate a rule pack and run every rule's embedded tests."""

import json
from pathlib import Path
from typing import Annotated

import typer

from app.engine import CaseReport, Ruleset, RulesetError, load_ruleset, run_tests
from app.engine.translations import check_translations, load_translations
from app.settings import get_settings

app = typer.Typer(help="Check rule packs.", no_args_is_help=True)


@app.command("check")
def check(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Rule pack directory (default: the configured pack)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate a rule pack and run its tests; exit 1 on any problem or failing test."""
    path = directory if directory is not None else get_settings().rules_path
    try:
        ruleset = load_ruleset(path)
        translations = check_translations(ruleset.questionnaire, load_translations(path))
    except RulesetError as error:
        if as_json:
            typer.echo(json.dumps({"ok": False, "problems": error.problems}, indent=2))
        for problem in error.problems:
            typer.echo(f"error: {problem}", err=True)
        typer.echo(f"{path}: invalid rule pack ({len(error.problems)} problem(s))", err=True)
        raise typer.Exit(1) from None
    report = run_tests(ruleset)
    lines = [str(problem) for problem in translations]
    body = _as_dict(ruleset, report) | {"ok": report.ok and not lines, "translations": lines}
    typer.echo(json.dumps(body, indent=2) if as_json else _summary(ruleset, report))
    for line in lines:
        typer.echo(f"TRANSLATION {line}", err=as_json)
    if not report.ok or translations:
        raise typer.Exit(1)


def _summary(ruleset: Ruleset, report: CaseReport) -> str:
    failed = report.failures
    lines = [
        f"Rule pack {ruleset.id} {ruleset.version} (sha256 {ruleset.sha256})",
        f"{report.rules} rules, {len(report.results)} tests: "
        f"{len(report.results) - len(failed)} passed, {len(failed)} failed",
    ]
    for result in failed:
        got = result.error or f"got {result.actual}"
        lines.append(f"FAIL {result.rule}: test {result.name!r}: expected {result.expected}, {got}")
    for rule, statuses in report.missing.items():
        lines.append(f"MISSING {rule}: no test expecting {', '.join(statuses)}")
    if report.ok:
        lines.append("OK: every test passed; every rule has a fired, a clear and an unknown test.")
    return "\n".join(lines)


def _as_dict(ruleset: Ruleset, report: CaseReport) -> dict[str, object]:
    return {
        "ok": report.ok,
        "ruleset": ruleset.ref.to_dict(),
        "rules": report.rules,
        "tests": [
            {
                "rule": r.rule,
                "name": r.name,
                "expected": r.expected,
                "actual": r.actual,
                "error": r.error,
                "passed": r.passed,
            }
            for r in report.results
        ],
        "missing": report.missing,
    }
