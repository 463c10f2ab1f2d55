"""The unit of work: every transaction's begin and commit (or rollback), and nowhere else.

``UnitOfWork`` is what the app writes through: ``session()`` for an ORM session in one
transaction (threadpool endpoints), ``write(work)`` for the hot Core writes, which it runs on
the writer the backend needs. The CLI and tests use ``session_scope`` directly. Services
receive the session or connection, never commit, and mark what only the unit may do through
``savepoint`` and ``pipeline_to_commit``.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import WriterBusy, fail_fast

T = TypeVar("T")

POSTGRES_WRITERS = 3
"""Hot writes a process runs at once on PostgreSQL (``UnitOfWork.write``).

Every write appends to the audit chain under the chain head's row lock, so writes commit one
at a time whatever their number. Three let one hold the lock while the others evaluate,
encrypt and insert. With one thread per request (16 under the bench's load), the others only
waited on the lock, each holding a pool connection and competing for the GIL with the
thread that held it. Measured with ``bench/api.py --postgres`` (bench/README.md): writes
without a key went from 410-455 to 600 req/s, and their p99 from 130-200 ms to 56 ms.
"""

_PIPELINE = "screening_pipeline"
"""``Connection.info`` key: the ``ExitStack`` that ``core_transaction`` closes after its
COMMIT. It is there only in a transaction that allows ``pipeline_to_commit``."""


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session in one transaction: commit on success, roll back on any exception.

    ``UnitOfWork.session`` for HTTP requests; used directly by CLI commands.
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

    For the prepared-statement writes (``UnitOfWork.write`` on PostgreSQL, in a worker
    thread): no ORM session around them. ``bind`` is the app's engine, or in tests the
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
    """Let the transaction opened inside end in a pipeline (``pipeline_to_commit``).

    The pipeline, if one was entered, is left after the transaction's COMMIT or ROLLBACK.
    Leaving it runs outside SQLAlchemy, so a driver error there (the connection lost at the
    end of the transaction) is re-raised as SQLAlchemy's, like every other database error.
    """
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        with ExitStack() as stack:
            connection.info[_PIPELINE] = stack
            try:
                yield
            finally:
                del connection.info[_PIPELINE]
    except dbapi_error as error:
        raise sa_exc.DBAPIError.instance(
            None, None, error, dbapi_error, hide_parameters=True, dialect=connection.dialect
        ) from error


def pipeline_to_commit(connection: Connection) -> None:
    """From here to the COMMIT, send statements without waiting for each (psycopg pipeline).

    For the end of a screening write on PostgreSQL: the rows, then the audit append under the
    chain head's row lock. The head update's ``RETURNING`` is fetched, so it waits for
    everything sent before it; the event insert, the head-hash update and the COMMIT then go
    in one round trip, so the lock is held for one round trip instead of three. A failing
    statement's error is raised at the next fetch or at the COMMIT, which then rolls back.

    Only Prepared statements may follow: SQLAlchemy reads no rows from a pipelined cursor (it
    has no description yet), and a savepoint's error would surface outside it. A no-op unless
    the unit's transaction allows it (``core_transaction``), and on other drivers than psycopg.
    """
    stack: ExitStack | None = connection.info.get(_PIPELINE)
    if stack is None or connection.dialect.driver != "psycopg":
        return
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    if dbapi_connection.pgconn.pipeline_status == 0:  # not yet in pipeline mode
        stack.enter_context(dbapi_connection.pipeline())


@contextmanager
def savepoint(bind: Connection | Session) -> Iterator[None]:
    """A SAVEPOINT in the unit's transaction: if the block raises, only the block is undone."""
    with bind.begin_nested():
        yield


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
            fail_fast(self._connection)
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


class UnitOfWork:
    """One transaction per request or command, begun and committed here, on the right writer.

    Args:
        factory: The app's sessionmaker (in tests, one bound to the test's outer transaction,
            so every commit here is a SAVEPOINT rolled back with the test).
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self._bind: Engine | Connection = factory.kw["bind"]
        is_sqlite = self._bind.dialect.name == "sqlite"
        self._loop_writer = LoopWriter(self._bind) if is_sqlite else None
        self._limiter: anyio.CapacityLimiter | None = None

    def session(self) -> AbstractContextManager[Session]:
        """An ORM session in one transaction, committed when the block ends without error."""
        return session_scope(self.factory)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction and commit it before returning its result.

        On SQLite, on the event loop through the ``LoopWriter`` (in a worker thread, which may
        wait, when another writer has the turn: the loop never waits); on PostgreSQL, whose
        statements are network round trips and whose chain-head lock may be held by another
        process, in a worker thread with a pooled connection, at most ``POSTGRES_WRITERS`` at
        once, the end pipelined. ``work`` must not await: it runs start to commit in one go.
        """
        if self._loop_writer is not None:
            try:
                with self._loop_writer.transaction() as connection:
                    return work(connection)
            except sa_exc.OperationalError as error:
                if not isinstance(error.orig, WriterBusy):
                    raise
                # Its BEGIN failed, so ``work`` never ran: run it in a thread, which may wait.
        bind = self._bind

        def in_thread() -> T:
            with core_transaction(bind) as connection:
                return work(connection)

        if self._limiter is None:  # made in the running event loop (anyio requires one)
            self._limiter = anyio.CapacityLimiter(POSTGRES_WRITERS)
        return await anyio.to_thread.run_sync(in_thread, limiter=self._limiter)

    def close(self) -> None:
        """Release the held SQLite connection and the event loop's limiter (at shutdown)."""
        if self._loop_writer is not None:
            self._loop_writer.close()
        self._limiter = None
