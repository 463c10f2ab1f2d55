"""make_engine(url) (SQLite pragmas and savepoint fix live here), make_sessionmaker()."""

import sqlite3
import threading
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


class _GatedConnection(sqlite3.Connection):
    """A pysqlite connection whose write transactions queue on its engine's process lock.

    ``make_engine`` sets ``gate``; ``_on_begin`` takes it before ``BEGIN IMMEDIATE`` and
    ``commit``/``rollback``/``close`` give it back once SQLite's lock is released.
    """

    gate: "threading.Lock | None" = None
    holding = False

    def acquire_gate(self) -> None:
        """Wait (at most the busy timeout) for this engine's write turn."""
        if self.gate is None:
            return
        if not self.gate.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
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
    dbapi_connection: Any = connection.connection.dbapi_connection
    if not isinstance(dbapi_connection, _GatedConnection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    dbapi_connection.acquire_gate()
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        dbapi_connection.release_gate()
        raise


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
        if read_only:
            connect_args.setdefault("options", "-c default_transaction_read_only=on")
        return create_engine(url, connect_args=connect_args, **kwargs)
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
