"""session_scope, core_transaction and LoopWriter: the only places that commit or roll back."""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db.prepared import PIPELINE


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session in one transaction: commit on success, roll back on any exception.

    Used by ``app.deps.get_session`` for HTTP requests and directly by CLI commands.
    """
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def core_transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """Yield a pooled connection in one Core transaction: commit on success, else roll back.

    For the prepared-statement writes (``POST /v1/screenings`` on PostgreSQL, in the
    threadpool): no ORM session around them. ``bind`` is the app's engine, or in tests the
    connection of the test's outer transaction (the write is then a SAVEPOINT inside it).
    """
    if isinstance(bind, Connection):
        with _pipeline_allowed(bind), bind.begin_nested():
            yield bind
    else:
        with bind.connect() as connection, _pipeline_allowed(connection), connection.begin():
            yield connection


@contextmanager
def _pipeline_allowed(connection: Connection) -> Iterator[None]:
    """Let the transaction opened inside end in a pipeline (``prepared.pipeline_to_commit``).

    The pipeline, if one was entered, is left after the transaction's COMMIT or ROLLBACK.
    """
    with ExitStack() as stack:
        connection.info[PIPELINE] = stack
        try:
            yield
        finally:
            del connection.info[PIPELINE]


class LoopWriter:
    """Short write transactions run on the event loop, on one held connection (SQLite).

    ``POST /v1/screenings`` on SQLite writes on the event loop instead of in the threadpool:
    its transaction is a few statements of microseconds each, writers of one SQLite database
    take turns anyway, and the threadpool round trip and GIL hand-offs between 16 threads
    cost more than the write itself (bench/README.md). The loop runs one such transaction at
    a time, start to commit, without awaiting in between, so one connection serves them all;
    it is checked out once, not per request, and the transaction is a Core transaction, not
    an ORM session (together about 140 µs per write). Other writers (threadpool requests,
    other processes) still queue with it on SQLite's write lock.

    Args:
        bind: The app's engine, or in tests the connection of the test's outer transaction
            (each write is then a SAVEPOINT inside it, rolled back with the test).
    """

    def __init__(self, bind: Engine | Connection) -> None:
        self._bind = bind
        self._connection: Connection | None = bind if isinstance(bind, Connection) else None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Yield the connection in one transaction: commit on success, roll back on error."""
        if self._connection is None or self._connection.invalidated:
            assert isinstance(self._bind, Engine)
            if self._connection is not None:  # a broken driver connection: start afresh
                self._connection.close()
            self._connection = self._bind.connect()
        connection = self._connection
        if connection.in_transaction():
            with connection.begin_nested():
                yield connection
        else:
            with connection.begin():
                yield connection

    def close(self) -> None:
        """Return the held connection to the engine's pool (at shutdown)."""
        if self._connection is not None and self._connection is not self._bind:
            self._connection.close()
            self._connection = None
