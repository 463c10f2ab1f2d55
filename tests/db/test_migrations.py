"""Migrations match the models, downgrade and upgrade cleanly, and create the audit triggers."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from app.db import migrate
from app.db.base import Base
from app.db.engine import make_engine

SQLITE_TRIGGERS = {
    "audit_event_no_update",
    "audit_event_no_delete",
    "audit_head_no_delete",
    "rule_pack_no_update",
    "rule_pack_no_delete",
}
POSTGRES_TRIGGERS = {
    "audit_event_no_change",
    "audit_event_no_truncate",
    "audit_head_no_delete",
    "audit_head_no_truncate",
    "rule_pack_no_change",
    "rule_pack_no_truncate",
}


def _triggers(engine: Engine) -> set[str]:
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        if engine.dialect.name == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    )
    with engine.connect() as connection:
        return set(connection.scalars(text(query)))


def test_upgrade_check_downgrade_upgrade(empty_database_url: str) -> None:
    config = migrate.make_config(database_url=empty_database_url)
    engine = make_engine(empty_database_url)
    migrate.upgrade(config)
    migrate.check(config)  # raises if autogenerate sees any difference
    assert migrate.is_at_head(config, engine)
    expected = SQLITE_TRIGGERS if engine.dialect.name == "sqlite" else POSTGRES_TRIGGERS
    assert _triggers(engine) == expected
    migrate.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert _triggers(engine) == set()
    migrate.upgrade(config)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event", "DELETE FROM audit_head"],
)
def test_audit_rows_cannot_be_changed(engine: Engine, statement: str) -> None:
    with engine.connect() as connection, connection.begin() as transaction:
        connection.execute(
            text(
                "INSERT INTO audit_event (seq, occurred_at, actor_type, action, outcome, "
                "prev_hash, hash) VALUES (999999, :at, 'cli', 'test.done', 'success', :z, :h)"
            ),
            {"at": datetime.now(UTC), "z": "0" * 64, "h": "f" * 64},
        )
        with pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text(statement))
        transaction.rollback()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE rule_pack SET content = '{}'",
        "UPDATE rule_pack SET version = '9.9.9'",
        "DELETE FROM rule_pack",
    ],
)
def test_rule_pack_rows_cannot_be_changed(engine: Engine, statement: str) -> None:
    with engine.connect() as connection, connection.begin() as transaction:
        connection.execute(
            text(
                "INSERT INTO rule_pack (sha256, pack_id, version, content, loaded_at) "
                "VALUES (:sha, 'ketamine-infusion', '1.0.0', '{\"id\": 1}', :at)"
            ),
            {"sha": "c" * 64, "at": datetime.now(UTC)},
        )
        with (
            pytest.raises(DBAPIError, match="rule packs are append-only"),
            connection.begin_nested(),
        ):
            connection.execute(text(statement + " WHERE sha256 = :sha"), {"sha": "c" * 64})
        stored = connection.scalar(text("SELECT content FROM rule_pack WHERE sha256 = :sha"),
                                   {"sha": "c" * 64})  # fmt: skip
        assert stored == '{"id": 1}'
        transaction.rollback()


def test_audit_head_starts_at_genesis(engine: Engine) -> None:
    with engine.connect() as connection:
        head = connection.execute(text("SELECT id, seq, hash FROM audit_head")).all()
    assert len(head) == 1
    assert head[0][0] == 1
    assert len(head[0][2]) == 64
