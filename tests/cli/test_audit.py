"""`screening audit verify` and `screening audit checkpoint`."""

import base64
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.engine import Ruleset
from tests.audit.factories import (
    KEY_1,
    build_chain,
    build_reviewed_screening,
    disable_audit_triggers,
)
from tests.cli.conftest import Invoke
from tests.factories import DATA_KEY as SERVICE_DATA_KEY

DATA_KEY = "k1:" + base64.b64encode(KEY_1).decode()
AUDIT_KEY = base64.b64encode(b"a" * 32).decode()


@pytest.fixture
def chain_env(empty_database_url: str) -> dict[str, str]:
    """A committed, migrated database with a 12-event chain, and the env to reach it."""
    migrate.upgrade(migrate.make_config(database_url=empty_database_url))
    engine = make_engine(empty_database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        build_chain(session)
    engine.dispose()
    return {
        "SCREENING_DATABASE_URL": empty_database_url,
        "SCREENING_DATA_KEY": DATA_KEY,
        "SCREENING_AUDIT_KEY": AUDIT_KEY,
    }


def _tamper(url: str, statement: str) -> None:
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        disable_audit_triggers(session)
        session.execute(text(statement))
    engine.dispose()


def test_verify_clean_chain_exits_0(invoke: Invoke, chain_env: dict[str, str]) -> None:
    result = invoke("audit", "verify", env=chain_env)
    assert result.exit_code == 0, result.output
    assert "OK: 12 events verified, 4 screenings" in result.stdout
    assert "verified 12 / 12 events" in result.stderr


def test_verify_json_report(invoke: Invoke, chain_env: dict[str, str]) -> None:
    result = invoke("audit", "verify", "--json", env=chain_env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["ok"], report["count"], report["first_bad_seq"]) == (True, 12, None)


def test_verify_names_first_bad_seq(invoke: Invoke, chain_env: dict[str, str]) -> None:
    _tamper(
        chain_env["SCREENING_DATABASE_URL"], "UPDATE audit_event SET actor_id = 'x' WHERE seq = 5"
    )
    result = invoke("audit", "verify", env=chain_env)
    assert result.exit_code == 1
    assert "BROKEN at seq 5: hash does not match the stored fields" in result.stderr


def test_checkpoint_then_truncation_is_detected(
    invoke: Invoke, chain_env: dict[str, str], tmp_path: Path
) -> None:
    result = invoke("audit", "checkpoint", env=chain_env)
    assert result.exit_code == 0, result.output
    checkpoint = tmp_path / "head.json"
    checkpoint.write_text(result.stdout)
    assert json.loads(result.stdout)["seq"] == 12
    clean = invoke("audit", "verify", "--checkpoint", str(checkpoint), env=chain_env)
    assert clean.exit_code == 0, clean.output
    url = chain_env["SCREENING_DATABASE_URL"]
    _tamper(url, "DELETE FROM audit_event WHERE seq > 10")
    _tamper(
        url, "UPDATE audit_head SET seq = 10, hash = (SELECT hash FROM audit_event WHERE seq = 10)"
    )
    assert invoke("audit", "verify", env=chain_env).exit_code == 0
    result = invoke("audit", "verify", "--checkpoint", str(checkpoint), env=chain_env)
    assert result.exit_code == 1
    assert "BROKEN at seq 11" in result.stderr
    assert "truncated" in result.stderr


def test_checkpoint_needs_audit_key(invoke: Invoke, chain_env: dict[str, str]) -> None:
    env = {name: value for name, value in chain_env.items() if name != "SCREENING_AUDIT_KEY"}
    result = invoke("audit", "checkpoint", env=env)
    assert result.exit_code == 2
    assert "SCREENING_AUDIT_KEY is not set" in result.stderr


def test_verify_rejects_malformed_checkpoint(
    invoke: Invoke, chain_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = invoke("audit", "verify", "--checkpoint", str(bad), env=chain_env)
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr


def test_verify_command_names_a_deleted_flag_and_an_edited_review(
    invoke: Invoke, empty_database_url: str, ruleset: Ruleset
) -> None:
    """The command itself, on a committed database: clean, then each tampering exits 1."""
    migrate.upgrade(migrate.make_config(database_url=empty_database_url))
    engine = make_engine(empty_database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        world = build_reviewed_screening(session, ruleset)
    engine.dispose()
    env = {"SCREENING_DATABASE_URL": empty_database_url, "SCREENING_DATA_KEY": SERVICE_DATA_KEY}
    clean = invoke("audit", "verify", env=env)
    assert clean.exit_code == 0, clean.output
    is_sqlite = empty_database_url.startswith("sqlite")
    review_id = world.review_id.hex if is_sqlite else str(world.review_id)
    _tamper(
        empty_database_url, f"UPDATE review SET disposition = 'cleared' WHERE id = '{review_id}'"
    )
    edited = invoke("audit", "verify", env=env)
    assert edited.exit_code == 1
    assert f"review {world.review_id}: disposition or override reason altered" in edited.stderr
    screening_id = world.screening_id.hex if is_sqlite else str(world.screening_id)
    _tamper(empty_database_url, f"DELETE FROM screening_flag WHERE screening_id = '{screening_id}'")
    deleted = invoke("audit", "verify", env=env)
    assert deleted.exit_code == 1
    assert "screening_flag rows do not match the stored result's flags" in deleted.stderr
