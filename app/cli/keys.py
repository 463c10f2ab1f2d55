"""`screening keys rotate`: re-encrypt stored PHI under the newest data key, in batches."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from app import crypto
from app.audit import service as audit_service
from app.cli.options import ActorOption, operator
from app.datakey import service as datakey_service
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.settings import get_settings

app = typer.Typer(help="Manage the data encryption keys.", no_args_is_help=True)


@contextmanager
def _sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _rotate_table(
    factory: sessionmaker[Session],
    keyring: crypto.KeyRing,
    table: str,
    batch_size: int,
    actor: audit_service.Actor,
) -> None:
    with session_scope(factory) as session:
        total = datakey_service.count_pending(session, keyring=keyring, table=table)
    done = 0
    while True:
        # One transaction per batch: a kill loses at most the batch in flight.
        with session_scope(factory) as session:
            count = datakey_service.rotate_batch(
                session, keyring=keyring, table=table, batch_size=batch_size, actor=actor
            )
        if count == 0:
            return
        done += count
        typer.echo(f"{table}: {done:,} / {total:,} rows re-encrypted to {keyring.current_kid}")


@app.command("rotate")
def rotate(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=10_000, help="Rows per transaction.")
    ] = 500,
    actor: ActorOption = None,
) -> None:
    """Re-encrypt every row not on the newest key; safe to interrupt and run again."""
    who = operator(actor)
    settings = get_settings()
    if settings.data_keys is None:
        typer.echo("error: SCREENING_DATA_KEY is not set", err=True)
        raise typer.Exit(2)
    keyring = crypto.KeyRing.parse(settings.data_keys.get_secret_value())
    try:
        with _sessions(settings.database_url) as factory:
            for table in datakey_service.TABLES:
                _rotate_table(factory, keyring, table, batch_size, who)
    except datakey_service.RowError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"OK: every row is on key {keyring.current_kid}")
