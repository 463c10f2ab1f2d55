"""make_engine(url) (SQLite pragmas and savepoint fix live here), make_sessionmaker().

WalCheckpointer: the service's SQLite WAL checkpoints, in a background thread.
"""

import logging
import sqlite3
import threading
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_ARGS = {
    # A server that does not answer fails a request in seconds instead of hanging it; a
    # connection whose peer vanished (no FIN) is found dead by TCP keepalives within a minute.
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
POOL_TIMEOUT_S = 10
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,  # connection refused or lost, SQLite busy or locked, timeouts
    sa_exc.InterfaceError,  # a connection the driver already knows is closed
    sa_exc.TimeoutError,  # no pooled connection came free within POOL_TIMEOUT_S
)
"""Errors that mean "the database cannot serve this now": the API answers 503 for them."""
logger = logging.getLogger(__name__)


class WriterBusy(sqlite3.OperationalError):
    """Another writer has the turn, and this connection does not wait (``fail_fast``)."""


class _GatedConnection(sqlite3.Connection):
    """A pysqlite connection whose write transactions queue on its engine's process lock.

    ``make_engine`` sets ``gate``; ``_on_begin`` takes it before ``BEGIN IMMEDIATE`` and
    ``commit``/``rollback``/``close`` give it back once SQLite's lock is released.
    """

    gate: "threading.Lock | None" = None
    holding = False
    is_waiting = True  # False (``fail_fast``): WriterBusy at once instead of waiting

    def acquire_gate(self) -> None:
        """Wait (at most the busy timeout) for this engine's write turn."""
        if self.gate is None:
            return
        if not self.is_waiting:
            if not self.gate.acquire(blocking=False):
                raise WriterBusy("database is locked")
        elif not self.gate.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise sqlite3.OperationalError("database is locked")
        self.holding = True

    def release_gate(self) -> None:
        """Hand the write turn on, if this connection holds it."""
        if self.holding and self.gate is not None:
            self.holding = False
            self.gate.release()

    def commit(self) -> None:
        """Commit, then release the gate."""
        try:
            super().commit()
        finally:
            self.release_gate()

    def rollback(self) -> None:
        """Roll back, then release the gate."""
        try:
            super().rollback()
        finally:
            self.release_gate()

    def close(self) -> None:
        """Close, then release the gate."""
        try:
            super().close()
        finally:
            self.release_gate()


def _begin_immediate(connection: Connection) -> None:
    # On the driver connection: through SQLAlchemy, this one statement cost several times
    # SQLite's own work, once per write transaction (bench/README.md).
    dbapi_connection: Any = connection.connection.dbapi_connection
    if not isinstance(dbapi_connection, _GatedConnection):
        dbapi_connection.execute("BEGIN IMMEDIATE")
        return
    try:
        dbapi_connection.acquire_gate()
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.release_gate()
            raise
    except sqlite3.OperationalError as error:
        # Raised in an event hook, outside SQLAlchemy's own translation: translate it here,
        # so a busy database is SQLAlchemy's OperationalError like any other (an API 503).
        if not dbapi_connection.is_waiting and "locked" in str(error):
            error = WriterBusy(str(error))
        raise sa_exc.DBAPIError.instance(
            None, None, error, sqlite3.Error, hide_parameters=True
        ) from error


def fail_fast(connection: Connection) -> None:
    """Make ``connection``'s write transactions raise at once when another writer has the turn.

    For the SQLite writer on the event loop (``app.db.unit.LoopWriter``): waiting there would
    stop the whole loop, including the thread-pool requests whose commit holds the turn. Its
    BEGIN then raises SQLAlchemy's OperationalError whose ``orig`` is ``WriterBusy``, and the
    write is run in a thread instead. A no-op on other drivers.
    """
    dbapi_connection: Any = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, _GatedConnection):
        dbapi_connection.is_waiting = False
        dbapi_connection.execute("PRAGMA busy_timeout=0")  # nor on another process's lock


def make_engine(url: str, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """Create the engine for ``url``; on SQLite, install the pragmas and transaction fix.

    SQLite: WAL (readers never block the writer), foreign keys on, ``synchronous=NORMAL``
    (durable across process crashes; WAL keeps the database consistent on power loss), and a
    busy timeout. pysqlite's own transaction handling breaks SAVEPOINT, so it is switched off
    and SQLAlchemy emits BEGIN itself (the documented pysqlite workaround). We emit
    ``BEGIN IMMEDIATE``: every transaction takes the write lock up front, so a read-then-write
    transaction (idempotency check, audit chain) can never fail halfway with SQLITE_BUSY.
    Within one process, writers wait for their turn on a lock per engine, taken before
    ``BEGIN IMMEDIATE`` and released after COMMIT/ROLLBACK: a woken waiter starts at once,
    whereas SQLite's busy handler polls with sleeps of up to 100 ms, which under 16 concurrent
    writers gave a p99 of seconds (bench/README.md).

    ``read_only=True`` (long readers such as ``screening audit verify``): SQLite emits a
    plain deferred ``BEGIN`` and sets ``query_only``, so the reader holds no write lock and
    WAL lets the service keep writing; PostgreSQL sessions start read-only. SQL echo is off
    and statement parameters are hidden from error messages on both backends (they hold
    ciphertexts, key hashes and client-chosen strings).
    """
    kwargs.setdefault("echo", False)
    kwargs.setdefault("hide_parameters", True)
    connect_args = kwargs.pop("connect_args", {})
    if not url.startswith("sqlite"):
        kwargs.setdefault("pool_pre_ping", True)
        # Room for every threadpool worker (anyio's default: 40) without churn: QueuePool
        # closes a returned connection beyond ``pool_size``, and the default (5, overflow 10)
        # opened and closed PostgreSQL connections under 16 concurrent writers.
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 20)
        kwargs.setdefault("pool_timeout", POOL_TIMEOUT_S)
        connect_args = POSTGRES_CONNECT_ARGS | connect_args
        if read_only:
            connect_args.setdefault("options", "-c default_transaction_read_only=on")
        return create_engine(url, connect_args=connect_args, **kwargs)
    return _sqlite_engine(url, read_only, connect_args, kwargs)


def _sqlite_engine(
    url: str, read_only: bool, connect_args: dict[str, Any], kwargs: dict[str, Any]
) -> Engine:
    """A SQLite engine with the pragmas, writer gate and BEGIN (IMMEDIATE) of make_engine."""
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    if not read_only:
        connect_args.setdefault("factory", _GatedConnection)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    gate = threading.Lock()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN (savepoint fix)
        if isinstance(dbapi_connection, _GatedConnection):
            dbapi_connection.gate = gate
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "foreign_keys=ON",
            "synchronous=NORMAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            *(["query_only=ON"] if read_only else []),
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if read_only:
            connection.exec_driver_sql("BEGIN")
            return
        _begin_immediate(connection)

    return engine


def make_sessionmaker(bind: Engine | Connection, **kwargs: Any) -> sessionmaker[Session]:
    """Return the sessionmaker every request and command uses (``expire_on_commit=False``).

    Tests bind it to a connection in an outer transaction with
    ``join_transaction_mode="create_savepoint"``.
    """
    kwargs.setdefault("expire_on_commit", False)
    return sessionmaker(bind=bind, **kwargs)


class WalCheckpointer:
    """Run an SQLite engine's WAL checkpoints in a background thread instead of in commits.

    By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages:
    that commit copies the pages into the database file, about 9 ms during which the event
    loop (where ``POST /v1/screenings`` writes on SQLite) serves nobody; at 500 writes/s
    that happened every 130 ms (bench/README.md). Here the engine's connections turn
    automatic checkpoints off (``wal_autocheckpoint=0``) and a thread, on its own
    connection, every ``interval`` seconds:

    - runs a PASSIVE checkpoint, which copies the WAL into the database without taking the
      write lock (SQLite releases the GIL meanwhile, so it runs on another core);
    - once the WAL holds ``restart_pages`` pages, takes the engine's writer gate (so no
      write of this process is in flight) and runs a RESTART checkpoint, which copies the
      few pages written since and makes the next writer start the WAL file over. Without
      it, a WAL that is always being appended to is never reset and grows without bound.
      The checkpoint connection does not wait on SQLite's lock (``busy_timeout=0``): if
      another process is reading or writing, the restart is simply retried on the next
      tick.

    ``stop()`` runs a last, truncating checkpoint. This is the arrangement SQLite's WAL
    documentation describes for applications that keep checkpoints off their write path.
    Create it before the engine's first connection (its ``connect`` hook sets the pragma).
    """

    def __init__(
        self, engine: Engine, *, interval: float = 0.05, restart_pages: int = 2_000
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._restart_pages = restart_pages
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        event.listen(engine, "connect", self._no_autocheckpoint)

    @staticmethod
    def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    def start(self) -> None:
        """Start the checkpoint thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="sqlite-wal-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread after a last checkpoint that also truncates the WAL file."""
        if self._thread is not None:
            self._stopped.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        pooled = self._engine.raw_connection()
        connection: Any = pooled.driver_connection
        try:
            connection.execute("PRAGMA busy_timeout=0")
            while not self._stopped.wait(self._interval):
                try:
                    if self._checkpoint(connection, "PASSIVE") >= self._restart_pages:
                        self._restart(connection)
                except Exception as error:  # the thread must not die: the WAL would grow
                    logger.warning("WAL checkpoint round failed: %s", type(error).__name__)
            self._checkpoint(connection, "TRUNCATE")
        finally:
            pooled.close()

    def _restart(self, connection: Any) -> None:
        gated = isinstance(connection, _GatedConnection)
        if gated:
            connection.acquire_gate()
        try:
            self._checkpoint(connection, "RESTART")
        finally:
            if gated:
                connection.release_gate()

    @staticmethod
    def _checkpoint(connection: Any, mode: str) -> int:
        """Run one checkpoint; return the pages in the WAL (0 if it could not run)."""
        try:
            _busy, pages, _copied = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as error:  # retried on the next tick
            logger.warning("WAL checkpoint (%s) failed: %s", mode, type(error).__name__)
            return 0
        return int(pages)
