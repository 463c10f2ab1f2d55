"""LoopWriter (one held connection, one transaction per write) and WalCheckpointer."""

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from app.db.engine import WalCheckpointer, make_engine
from app.db.unit import LoopWriter


def _sqlite(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)"))
    return engine


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM t")).scalar_one())


class RequestFailed(Exception):
    """An error raised by a write after its statement ran."""


def _fail_inside(writer: LoopWriter, statement: str) -> Connection:
    """Run ``statement`` in a write that then fails; return the connection it used."""
    used: list[Connection] = []

    def write() -> None:
        with writer.transaction() as connection:
            used.append(connection)
            connection.execute(text(statement))
            raise RequestFailed

    with pytest.raises(RequestFailed):
        write()
    return used[0]


def test_loop_writer_commits_rolls_back_and_keeps_one_connection(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    writer = LoopWriter(engine)
    with writer.transaction() as first:
        first.execute(text("INSERT INTO t (payload) VALUES (x'01')"))
    second = _fail_inside(writer, "INSERT INTO t (payload) VALUES (x'02')")
    assert second is first  # checked out once, not per write
    assert _count(engine) == 1  # the failed write left nothing
    writer.close()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]  # QueuePool
    engine.dispose()


def test_loop_writer_replaces_a_broken_connection(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    writer = LoopWriter(engine)
    with writer.transaction() as first:
        first.execute(text("INSERT INTO t (payload) VALUES (x'01')"))
    first.invalidate()  # what SQLAlchemy does when the driver reports a dead connection
    with writer.transaction() as second:
        second.execute(text("INSERT INTO t (payload) VALUES (x'02')"))
    assert second is not first
    assert _count(engine) == 2
    writer.close()
    engine.dispose()


def test_loop_writer_inside_an_outer_transaction_uses_savepoints(connection: Connection) -> None:
    writer = LoopWriter(connection)
    connection.execute(text("CREATE TEMPORARY TABLE w (n INTEGER)"))
    with writer.transaction() as inner:
        inner.execute(text("INSERT INTO w VALUES (1)"))
    _fail_inside(writer, "INSERT INTO w VALUES (2)")
    assert connection.in_transaction()  # the test's transaction is untouched
    assert connection.execute(text("SELECT n FROM w")).scalars().all() == [1]
    writer.close()
    assert not connection.closed


def test_checkpointer_keeps_the_wal_bounded_and_truncates_it_at_stop(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    checkpointer = WalCheckpointer(engine, interval=0.005, restart_pages=64)
    with engine.begin() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)"))
    wal = Path(f"{tmp_path / 'wal.db'}-wal")
    checkpointer.start()
    largest = 0
    # Sustained writes, never idle: without the RESTART step the WAL would hold every page
    # written (about 6 MB here), as a PASSIVE checkpoint never finds it fully copied.
    for batch in range(1500):
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO t (payload) VALUES (:payload)"), {"payload": os.urandom(4000)}
            )
        if batch % 50 == 0:
            largest = max(largest, wal.stat().st_size)
    checkpointer.stop()
    assert largest < 3_000_000
    assert wal.stat().st_size == 0  # truncated by the last checkpoint
    assert _count(engine) == 1500
    assert not any(t.name == "sqlite-wal-checkpoint" for t in threading.enumerate())
    engine.dispose()


def test_without_the_checkpointer_sqlite_checkpoints_in_commits(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 1000
    engine.dispose()


def test_checkpointer_survives_a_failed_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    checkpointer = WalCheckpointer(engine, interval=0.005, restart_pages=16)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)"))
    failures = iter([RuntimeError("the gate timed out")])
    restart = WalCheckpointer._restart

    restarted = threading.Event()

    def flaky_restart(self: WalCheckpointer, connection: object) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        restart(self, connection)
        restarted.set()

    monkeypatch.setattr(WalCheckpointer, "_restart", flaky_restart)
    checkpointer.start()
    for _ in range(200):
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO t (payload) VALUES (:payload)"), {"payload": os.urandom(4000)}
            )
    # The thread lived on: a later round restarted the WAL (however loaded the machine is).
    assert restarted.wait(timeout=10), "no checkpoint round succeeded after the failed one"
    assert any(t.name == "sqlite-wal-checkpoint" for t in threading.enumerate())
    checkpointer.stop()
    assert "WAL checkpoint round failed: RuntimeError" in caplog.text
    engine.dispose()
