"""`screening audit verify` and `screening audit checkpoint`: check and anchor the audit chain."""

import base64
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from app.audit import checkpoint as audit_checkpoint
from app.audit import parallel as audit_parallel
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.screening import store
from app.settings import Settings, get_settings

app = typer.Typer(
    help="Verify and checkpoint the tamper-evident audit trail.", no_args_is_help=True
)


@contextmanager
def _sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    # Read-only: on SQLite a write transaction (BEGIN IMMEDIATE) would stall the service's
    # writes for the whole verification.
    engine = make_engine(database_url, read_only=True)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _audit_key(settings: Settings) -> bytes:
    if settings.audit_key is None:
        typer.echo("error: SCREENING_AUDIT_KEY is not set", err=True)
        raise typer.Exit(2)
    return base64.b64decode(settings.audit_key.get_secret_value())


def _load_checkpoint(path: Path) -> audit_checkpoint.Checkpoint:
    try:
        return audit_checkpoint.Checkpoint.from_json(path.read_text(encoding="utf-8"))
    except (OSError, audit_checkpoint.CheckpointError) as error:
        typer.echo(f"error: checkpoint {path}: {error}", err=True)
        raise typer.Exit(2) from None


class _ProgressLine:
    """Progress on stderr, at most about once a second."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= 1.0 or done >= total:
            self._last = now
            typer.echo(f"verified {done:,} / {total:,} events", err=True)


@app.command("verify")
def verify(
    checkpoint_file: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="Signed checkpoint file the chain must still contain."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="Processes verifying seq ranges (long chains only)."),
    ] = min(os.cpu_count() or 1, 4),
) -> None:
    """Recompute the whole chain and every referenced screening digest; exit 1 if broken."""
    settings = get_settings()
    if settings.data_keys is None:
        typer.echo("warning: SCREENING_DATA_KEY not set: screening digests not checked", err=True)
    cp = None if checkpoint_file is None else _load_checkpoint(checkpoint_file)
    key = None if cp is None else _audit_key(settings)
    report = audit_parallel.verify_chain_parallel(
        settings.database_url,
        key_spec=None if settings.data_keys is None else settings.data_keys.get_secret_value(),
        content_digest=store.content_digest,
        workers=workers,
        checkpoint=cp,
        checkpoint_key=key,
        progress=_ProgressLine(),
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    elif report.ok:
        typer.echo(
            f"OK: {report.count:,} events verified, {report.screenings_checked:,} screenings"
        )
    if not report.ok:
        typer.echo(f"BROKEN at seq {report.first_bad_seq}: {report.problem}", err=True)
        raise typer.Exit(1)


@app.command("checkpoint")
def checkpoint() -> None:
    """Print a signed checkpoint of the chain head; keep it outside the database."""
    settings = get_settings()
    key = _audit_key(settings)
    with _sessions(settings.database_url) as factory, session_scope(factory) as session:
        signed = audit_checkpoint.make_checkpoint(session, key=key)
    typer.echo(signed.to_json())
