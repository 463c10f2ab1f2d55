"""`screening rules publish|history|rollback|impact`: a clinic's own policy, changed deliberately.

Registered on the `rules` group (``app/cli/__init__.py``). Each change and each impact
analysis is an audit event; the actor is ``--actor`` (default: the operating-system user).
"""

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy.orm import Session

from app.cli.db import fail, settings_or_exit
from app.cli.options import ActorOption, database_session, operator
from app.crypto import KeyRing, KeySpecError
from app.engine import Ruleset, RulesetError, load_ruleset, run_tests
from app.engine.diff import diff_rulesets
from app.engine.translations import Catalogue, check_translations, load_translations
from app.errors import AppError
from app.rulepack import policy, replay
from app.rulepack.impact import Impact
from app.rulepack.report import render_html
from app.rulepack.service import StoredRulePackError, stored_rulesets

CHANGED_SHOWN = 20
PARALLEL_FROM = 20_000  # fewer screenings: starting worker processes costs more than it saves
ClinicOption = Annotated[str, typer.Option("--clinic", help="The clinic's name.")]
WorkersOption = Annotated[
    int, typer.Option("--workers", min=1, max=16, help="Processes evaluating (default 2).")
]
DateOption = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="YYYY-MM-DD (as-of date, inclusive).")
]


def _keyring() -> KeyRing:
    settings = settings_or_exit()
    if settings.data_keys is None:
        fail("SCREENING_DATA_KEY is not set: the stored answers cannot be decrypted")
    try:
        return KeyRing.parse(settings.data_keys.get_secret_value())
    except KeySpecError as error:
        fail(f"SCREENING_DATA_KEY is invalid: {error}")


def _key_spec() -> str:
    """The data keys, for worker processes (sent on their standard input, nowhere else)."""
    keys = settings_or_exit().data_keys
    return "" if keys is None else keys.get_secret_value()


@contextmanager
def _transaction() -> Iterator[Session]:
    """One transaction on the configured database; AppError → one line and exit 1."""
    try:
        with database_session() as session:
            yield session
    except AppError as error:
        fail(error.detail or "failed")
    except StoredRulePackError as error:
        fail(str(error))


def _checked_pack(directory: Path) -> tuple[Ruleset, dict[str, Catalogue]]:
    """Load a pack, run its tests and its translation checks; exit 1 on any problem."""
    try:
        ruleset = load_ruleset(directory)
        catalogues = load_translations(directory)
    except RulesetError as error:
        fail(f"{directory}: invalid rule pack: " + "; ".join(error.problems))
    report = run_tests(ruleset)
    problems = [f"{f.rule}: test {f.name!r} fails" for f in report.failures]
    problems += [f"{rule}: no test expects {', '.join(s)}" for rule, s in report.missing.items()]
    problems += [str(problem) for problem in check_translations(ruleset.questionnaire, catalogues)]
    if problems:
        fail(f"{directory}: not publishable:\n  " + "\n  ".join(problems))
    return ruleset, catalogues


def _active(session: Session, clinic_id: uuid.UUID) -> Ruleset:
    """The clinic's active pack; a clinic without one is pinned first, as a server start would.

    So the history starts with the pack the clinic was on, and a rollback can return to it.
    """
    default = load_ruleset(settings_or_exit().rules_path)
    policy.adopt(session, clinic_id=clinic_id, default=default, now=datetime.now(UTC))
    return policy.resolve(session, clinic_id=clinic_id, rulesets=stored_rulesets(), default=default)


def _progress_replay(
    session: Session,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    candidate: Ruleset,
    period: replay.Period,
    workers: int = 2,
) -> Impact:
    """Replay with a progress bar on standard error when it is a terminal."""
    console = Console(stderr=True)
    total = replay.count_screenings(session, clinic_id=clinic_id, period=period)
    workers = workers if total >= PARALLEL_FROM else 1
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task("replaying", total=total)
        advance: Callable[[int], None] = lambda n: bar.advance(task, n)  # noqa: E731
        return replay.replay(
            session, keyring=keyring, clinic_id=clinic_id, candidate=candidate,
            period=period, advance=advance, workers=workers, key_spec=_key_spec(),
        )  # fmt: skip


def _summary(impact: Impact) -> list[str]:
    """The report's text, with only the first changed screenings listed."""
    lines = impact.lines()
    if impact.changed and len(impact.changed) > CHANGED_SHOWN:
        cut = len(lines) - len(impact.changed) + CHANGED_SHOWN
        lines = [*lines[:cut], f"  … {impact.changed_total - CHANGED_SHOWN} more (see --json)"]
    return lines


def publish(
    directory: Annotated[Path, typer.Argument(help="The rule pack directory to publish.")],
    clinic: ClinicOption,
    yes: Annotated[bool, typer.Option("--yes", help="Publish without asking.")] = False,
    actor: ActorOption = None,
) -> None:
    """Check a pack, show its diff and impact for the clinic, then make it the active pack."""
    candidate, catalogues = _checked_pack(directory)
    keyring, who = _keyring(), operator(actor)
    with _transaction() as session:  # read, replay and record the analysis
        found = policy.find_clinic(session, name=clinic)
        active = _active(session, found.id)
        typer.echo("\n".join(diff_rulesets(active, candidate).lines()))
        impact = _progress_replay(session, keyring, found.id, candidate, replay.Period())
        typer.echo("\n" + "\n".join(_summary(impact)))
        replay.record(session, clinic_id=found.id, impact=impact, period=replay.Period(),
                      active_sha256=active.sha256, actor=who, now=datetime.now(UTC))  # fmt: skip
    if not yes and not typer.confirm(f"Publish {candidate.version} for {clinic}?"):
        fail("nothing published")
    with _transaction() as session:  # a second transaction: none is held open at a prompt
        done = policy.publish(session, clinic_id=found.id, ruleset=candidate,
                              catalogues=catalogues, actor=who, now=datetime.now(UTC))  # fmt: skip
    typer.echo(f"Published {done.to_sha256} for {clinic} (was {done.from_sha256 or 'none'}).")
    typer.echo("Running servers use it within 5 seconds; open invitations keep their pack.")


def history(
    clinic: ClinicOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print the history as JSON.")] = False,
) -> None:
    """List what was active when, and who made it active, oldest first."""
    with _transaction() as session:
        found = policy.find_clinic(session, name=clinic)
        entries = policy.history(session, clinic_id=found.id)
        active = policy.active_sha256(session, clinic_id=found.id)
    rows = [
        {"activated_at": e.activated_at.isoformat(), "kind": e.kind, "version": e.version,
         "sha256": e.to_sha256, "from_sha256": e.from_sha256, "actor": e.actor}
        for e in entries
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"clinic": clinic, "active": active, "history": rows}, indent=2))
        return
    if not rows:
        typer.echo(f"{clinic}: no pack activated yet (on the server's default pack)")
    for row in rows:
        mark = " (active)" if row is rows[-1] else ""
        typer.echo(f"{row['activated_at']}  {row['kind']:<11}  {row['version']:<8}  "
                   f"{row['sha256']}  by {row['actor']}{mark}")  # fmt: skip


def rollback(
    clinic: ClinicOption,
    to: Annotated[str, typer.Option("--to", help="The sha256 of a pack the clinic had before.")],
    actor: ActorOption = None,
) -> None:
    """Re-activate a pack the clinic had active before."""
    who = operator(actor)
    with _transaction() as session:
        found = policy.find_clinic(session, name=clinic)
        done = policy.roll_back(session, clinic_id=found.id, sha256=to, rulesets=stored_rulesets(),
                               actor=who, now=datetime.now(UTC))  # fmt: skip
    typer.echo(f"Rolled back {clinic} to {done.to_sha256} (was {done.from_sha256}).")


def impact(
    clinic: ClinicOption,
    candidate: Annotated[Path, typer.Option("--candidate", help="The candidate pack directory.")],
    since: DateOption = None,
    until: DateOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write an HTML page.")] = None,
    actor: ActorOption = None,
    workers: WorkersOption = 2,
) -> None:
    """Replay the clinic's stored screenings under a candidate pack; report what would change."""
    period = replay.Period(_day(since), _day(until))
    try:
        pack = load_ruleset(candidate)
    except RulesetError as error:
        fail(f"{candidate}: invalid rule pack: " + "; ".join(error.problems))
    keyring, who = _keyring(), operator(actor)
    with _transaction() as session:
        found = policy.find_clinic(session, name=clinic)
        active = policy.active_sha256(session, clinic_id=found.id)
        result = _progress_replay(session, keyring, found.id, pack, period, workers)
        replay.record(session, clinic_id=found.id, impact=result, period=period,
                      active_sha256=active, actor=who, now=datetime.now(UTC))  # fmt: skip
    if html is not None:
        base = settings_or_exit().public_base_url or ""
        page = render_html(result, clinic=clinic, period=period.describe(), base_url=base)
        html.write_text(page, encoding="utf-8")
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else "\n".join(_summary(result)))


def _day(value: datetime | None) -> date | None:
    return None if value is None else value.date()
