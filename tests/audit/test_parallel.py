"""verify_chain_parallel(): ranges in worker processes report exactly what one walk reports."""

import base64
from collections.abc import Callable
from functools import partial

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.audit import parallel, verify
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.screening import store
from tests.audit.factories import KEY_1, KEYRING, build_chain, disable_audit_triggers

KEY_SPEC = "k1:" + base64.b64encode(KEY_1).decode()
RANGE = 7  # 10 screenings x (1 created + 4 reads) + clinic/pack events: several ranges


def _committed_chain(url: str) -> None:
    migrate.upgrade(migrate.make_config(database_url=url))
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        build_chain(session, screenings=10, reads=4)
    engine.dispose()


def _tamper(url: str, change: Callable[[Session], object]) -> None:
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        disable_audit_triggers(session)
        change(session)
    engine.dispose()


def _sequential(url: str) -> verify.VerifyReport:
    engine = make_engine(url, read_only=True)
    with make_sessionmaker(engine)() as session:
        report = verify.verify_chain(session, screenings=partial(store.content_digest, KEYRING))
    engine.dispose()
    return report


def _sql(statement: str) -> Callable[[Session], object]:
    return lambda session: session.execute(text(statement))


TAMPERS = {
    "untouched": None,
    "field altered mid-range": _sql("UPDATE audit_event SET actor_id = 'x' WHERE seq = 10"),
    "first event of a range deleted": _sql("DELETE FROM audit_event WHERE seq = 15"),
    "last event of a range deleted": _sql("DELETE FROM audit_event WHERE seq = 14"),
    "range boundary relinked": _sql(
        "UPDATE audit_event SET prev_hash = (SELECT hash FROM audit_event WHERE seq = 3) "
        "WHERE seq = 22"
    ),
    "tail deleted": _sql("DELETE FROM audit_event WHERE seq > 40"),
}


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
def test_parallel_report_equals_sequential_report(
    empty_database_url: str, tamper: Callable[[Session], object] | None
) -> None:
    _committed_chain(empty_database_url)
    if tamper is not None:
        _tamper(empty_database_url, tamper)
    expected = _sequential(empty_database_url)
    report = parallel.verify_chain_parallel(
        empty_database_url,
        key_spec=KEY_SPEC,
        content_digest=store.content_digest,
        workers=2,
        range_size=RANGE,
    )
    assert report.head_seq > 2 * RANGE  # really split into ranges
    assert (report.ok, report.first_bad_seq, report.problem) == (
        expected.ok,
        expected.first_bad_seq,
        expected.problem,
    )
    assert report.ok is (tamper is None)
    if report.ok:
        assert report.count == expected.count == report.head_seq
        assert report.screenings_checked >= 10
