"""`screening rules check` and `rules diff`: validate a pack and its tests; compare two packs."""

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from app.cli.db import fail, settings_or_exit
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.engine import CaseReport, Ruleset, RulesetError, load_ruleset, run_tests
from app.engine.diff import diff_rulesets
from app.engine.translations import Catalogue, check_translations, load_translations
from app.errors import NotFound
from app.rulepack.service import RulesetCache, StoredRulePackError
from app.settings import get_settings

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")

app = typer.Typer(help="Check and compare rule packs.", no_args_is_help=True)


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


@app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="The earlier pack: a directory, or a stored sha256.")],
    new: Annotated[str, typer.Argument(help="The later pack: a directory, or a stored sha256.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """Show what changed between two rule packs: rules, thresholds, items, translations."""
    (before, old_texts), (after, new_texts) = _pack(old), _pack(new)
    both = old_texts is not None and new_texts is not None
    result = diff_rulesets(
        before,
        after,
        old_translations=old_texts if both else None,
        new_translations=new_texts if both else None,
    )
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else "\n".join(result.lines()))
    if not both:
        typer.echo("note: translations are compared only between two directories", err=True)


def _pack(source: str) -> tuple[Ruleset, dict[str, Catalogue] | None]:
    """A pack from a directory (with its translations) or from the database by sha256."""
    if Path(source).is_dir() or not _SHA256.match(source):
        try:
            return load_ruleset(source), load_translations(Path(source))
        except RulesetError as error:
            fail(f"{source}: invalid rule pack: " + "; ".join(error.problems))
    engine = make_engine(settings_or_exit().database_url, read_only=True)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            return RulesetCache().get(session, sha256=source.lower()), None
    except NotFound:
        fail(f"no rule pack with sha256 {source} is stored in this database")
    except StoredRulePackError as error:
        fail(str(error))
    finally:
        engine.dispose()


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
