"""make_engine(read_only=True): long readers (audit verify) never block writers, never write."""

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.apikey import service as apikey_service
from app.audit import service as audit_service
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import AuditHead
from app.db.unit import session_scope


def test_open_read_only_transaction_does_not_block_a_writer(empty_database_url: str) -> None:
    migrate.upgrade(migrate.make_config(database_url=empty_database_url))
    reader, writer = (
        make_engine(empty_database_url, read_only=True),
        make_engine(empty_database_url),
    )
    try:
        with make_sessionmaker(reader)() as verifying:
            head_before = verifying.scalar(select(AuditHead.seq))  # the read transaction is open
            started = time.monotonic()
            with session_scope(make_sessionmaker(writer)) as session:
                apikey_service.create(
                    session, clinic_name="Busy clinic", actor=audit_service.Actor.cli(),
                    now=datetime.now(UTC),
                )  # fmt: skip
            assert time.monotonic() - started < 5  # not the 30 s busy timeout
        with make_sessionmaker(writer)() as session:
            assert (session.scalar(select(AuditHead.seq)) or 0) > (head_before or 0)
    finally:
        reader.dispose()
        writer.dispose()


def test_read_only_engine_refuses_writes(empty_database_url: str) -> None:
    migrate.upgrade(migrate.make_config(database_url=empty_database_url))
    reader = make_engine(empty_database_url, read_only=True)
    try:
        with pytest.raises(DBAPIError), reader.begin() as connection:
            connection.execute(text("UPDATE audit_head SET seq = seq + 1"))
    finally:
        reader.dispose()
