"""Prepared statements: the same SQL, types and errors as Connection.execute, on both backends."""

import uuid
from datetime import UTC, date, datetime
from typing import Any, cast

import pytest
from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.db.models import AuditHead, Clinic, Decision, Screening, Source
from app.db.prepared import Prepared
from app.db.unit import core_transaction, pipeline_to_commit
from app.engine import Ruleset
from app.rulepack import service as rulepack_service
from tests.factories import make_key

SCREENINGS = cast(Table, Screening.__table__)
HEAD = cast(Table, AuditHead.__table__)
INSERT_SCREENING = Prepared(insert(SCREENINGS), [column.name for column in SCREENINGS.c])
SELECT_SCREENING = Prepared(
    select(SCREENINGS.c.id, SCREENINGS.c.created_at, SCREENINGS.c.decision).where(
        SCREENINGS.c.id == bindparam("id")
    )
)
NEXT_SEQ = Prepared(
    update(HEAD)
    .where(HEAD.c.id == bindparam("head_id"))
    .values(seq=HEAD.c.seq + 1)  # the 1 is the statement's own constant
    .returning(HEAD.c.seq)
)


def _row(session: Session, ruleset: Ruleset, **overrides: Any) -> dict[str, Any]:
    clinic_id = make_key(session).clinic_id
    rulepack_service.store_rule_pack(session, ruleset=ruleset, now=datetime.now(UTC))
    session.flush()
    return {
        "id": uuid.uuid4(),
        "clinic_id": clinic_id,
        "created_at": datetime(2026, 6, 15, 9, 30, 1, 123456, tzinfo=UTC),
        "as_of_date": date(2026, 6, 15),
        "decision": Decision.needs_review,
        "rule_pack_sha256": ruleset.sha256,
        "has_exclude": False,
        "source": Source.api,
        "key_id": "k1",
        "subject_ct": b"\x00subject",
        "answers_ct": b"\x01answers",
        "result_ct": b"\x02result",
    } | overrides


def test_a_prepared_insert_stores_what_the_orm_reads_back(
    session: Session, ruleset: Ruleset
) -> None:
    row = _row(session, ruleset)
    INSERT_SCREENING.execute(session.connection(), row)
    stored = session.get_one(Screening, row["id"])
    assert stored.created_at == row["created_at"]  # aware UTC, microseconds kept
    assert (stored.as_of_date, stored.decision, stored.source) == (
        date(2026, 6, 15),
        Decision.needs_review,
        Source.api,
    )
    assert (stored.clinic_id, stored.result_ct) == (row["clinic_id"], b"\x02result")


def test_a_prepared_select_converts_results_like_the_orm(
    session: Session, ruleset: Ruleset
) -> None:
    row = _row(session, ruleset)
    INSERT_SCREENING.execute(session.connection(), row)
    found = SELECT_SCREENING.execute(session.connection(), {"id": row["id"]})
    assert found is not None
    screening_id, created_at, decision = found
    assert isinstance(screening_id, uuid.UUID)
    assert screening_id == row["id"]
    assert created_at == row["created_at"]
    assert created_at.tzinfo is not None
    assert decision == "needs_review"
    assert SELECT_SCREENING.execute(session.connection(), {"id": uuid.uuid4()}) is None


def test_statement_constants_and_returning(session: Session) -> None:
    connection = session.connection()
    before = session.scalar(select(AuditHead.seq))
    assert NEXT_SEQ.execute(connection, {"head_id": 1}) == ((before or 0) + 1,)
    assert NEXT_SEQ.execute(connection, {"head_id": 1}) == ((before or 0) + 2,)


def test_executemany_inserts_every_row(session: Session, ruleset: Ruleset) -> None:
    rows = [_row(session, ruleset) for _ in range(3)]
    INSERT_SCREENING.executemany(session.connection(), rows)
    stored = session.scalars(select(Screening.id).where(Screening.id.in_([r["id"] for r in rows])))
    assert set(stored) == {r["id"] for r in rows}


def test_a_driver_error_is_sqlalchemys_and_hides_the_values(
    session: Session, ruleset: Ruleset
) -> None:
    row = _row(session, ruleset, key_id="CANARY-key-id-41")
    INSERT_SCREENING.execute(session.connection(), row)
    with pytest.raises(IntegrityError) as raised, session.begin_nested():
        INSERT_SCREENING.execute(session.connection(), row)  # the same primary key
    message = str(raised.value)
    assert "SQL parameters hidden" in message  # the statement is named, its values are not
    assert "CANARY" not in message
    assert isinstance(raised.value.orig, session.connection().dialect.loaded_dbapi.Error)


def test_columns_that_do_not_match_the_statement_are_refused(connection: Connection) -> None:
    with pytest.raises(ValueError, match="not the columns given"):
        Prepared(insert(SCREENINGS).values(id=bindparam("x")), ["id"]).execute(connection, {})


def test_audit_append_through_prepared_statements_verifies(session: Session) -> None:
    first = audit_service.append(
        session, action="test.prepared", actor=audit_service.Actor.cli(), clinic_id=None
    )
    second = audit_service.append(
        session.connection(), action="test.prepared", actor=audit_service.Actor.cli(),
        clinic_id=None, detail={"n": 2},
    )  # fmt: skip
    assert second.seq == first.seq + 1
    assert session.scalar(select(AuditHead.hash)) == second.hash


CLINICS = cast(Table, Clinic.__table__)
INSERT_CLINIC = Prepared(insert(CLINICS), [column.name for column in CLINICS.c])
COUNT_CLINIC = Prepared(
    select(func.count()).select_from(CLINICS).where(CLINICS.c.name == bindparam("name"))
)


def _clinic(name: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "name": name,
        "phone": None,
        "form_origins": [],
        "require_totp": False,
        "created_at": datetime.now(UTC),
        "rule_pack_sha256": None,
    }


def _stored(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        row = COUNT_CLINIC.execute(connection, {"name": name})
        assert row is not None
        return int(row[0])


def _insert_twice(engine: Engine, first: dict[str, Any], duplicate: dict[str, Any]) -> None:
    """One write whose last, pipelined statement violates the clinic name's uniqueness."""
    with core_transaction(engine) as connection:
        INSERT_CLINIC.execute(connection, first)
        pipeline_to_commit(connection)
        INSERT_CLINIC.execute(connection, duplicate)
        INSERT_CLINIC.execute(connection, duplicate | {"id": uuid.uuid4()})  # same name


class TestPipelineToCommit:
    """The end of a write pipelined on PostgreSQL (a no-op on SQLite): same rows, same errors."""

    def test_commits_every_statement(self, engine: Engine) -> None:
        names = [f"Pipelined {uuid.uuid4()}" for _ in range(3)]
        try:
            with core_transaction(engine) as connection:
                INSERT_CLINIC.execute(connection, _clinic(names[0]))
                pipeline_to_commit(connection)
                if engine.dialect.name == "postgresql":  # the rest is sent without waiting
                    pgconn = connection.connection.dbapi_connection.pgconn  # type: ignore[union-attr]
                    assert pgconn.pipeline_status != 0
                INSERT_CLINIC.execute(connection, _clinic(names[1]))
                INSERT_CLINIC.executemany(connection, [_clinic(names[2])])
                # A read in the pipeline sees what was sent before it.
                assert COUNT_CLINIC.execute(connection, {"name": names[1]}) == (1,)
            assert [_stored(engine, name) for name in names] == [1, 1, 1]
        finally:
            with engine.begin() as connection:
                connection.execute(delete(CLINICS).where(CLINICS.c.name.in_(names)))

    def test_a_failing_statement_rolls_back_the_whole_transaction(self, engine: Engine) -> None:
        first, duplicate = (
            _clinic(f"Pipelined {uuid.uuid4()}"),
            _clinic(f"Pipelined {uuid.uuid4()}"),
        )
        with pytest.raises(IntegrityError):
            _insert_twice(engine, first, duplicate)
        assert (_stored(engine, first["name"]), _stored(engine, duplicate["name"])) == (0, 0)
        with core_transaction(engine) as connection:  # the pooled connection is usable again
            assert COUNT_CLINIC.execute(connection, {"name": first["name"]}) == (0,)

    def test_only_where_the_transaction_allows_it(self, engine: Engine) -> None:
        name = f"Pipelined {uuid.uuid4()}"
        with engine.connect() as connection, connection.begin():
            pipeline_to_commit(connection)  # no core_transaction: nothing changes
            INSERT_CLINIC.execute(connection, _clinic(name))
            assert (
                connection.execute(
                    select(CLINICS.c.name).where(CLINICS.c.name == name)
                ).scalar_one()
                == name
            )
            connection.rollback()
