"""Errors of any `screening` command: one clear line and exit 1, never a traceback or a value."""

from pathlib import Path

import pytest

from app.audit import parallel as audit_parallel
from tests.cli.conftest import Invoke


def test_a_database_that_cannot_be_opened_is_one_clear_error(
    invoke: Invoke, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-directory' / 'screening.db'}"
    result = invoke("audit", "verify", env={"SCREENING_DATABASE_URL": url})
    assert result.exit_code == 1
    assert f"error: the database {url} could not be used: unable to open database file" in (
        result.stderr
    )
    assert "SCREENING_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.output


def test_an_unreachable_postgresql_server_is_one_clear_error_without_its_password(
    invoke: Invoke,
) -> None:
    url = "postgresql+psycopg://screening:hunter2-secret@127.0.0.1:1/screening"
    result = invoke("db", "upgrade", env={"SCREENING_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "could not be used: connection failed" in result.stderr
    assert "127.0.0.1:1/screening" in result.stderr  # which database, password hidden
    assert "hunter2-secret" not in result.output
    assert "Traceback" not in result.output


def test_a_database_without_the_schema_says_to_upgrade(invoke: Invoke) -> None:
    result = invoke("audit", "verify")  # the fixture's fresh SQLite file, never upgraded
    assert result.exit_code == 1
    assert "no such table" in result.stderr
    assert "`screening db upgrade`" in result.stderr


def test_an_unexpected_error_shows_where_but_never_its_message(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise ValueError("CANARY-subject-MRN-5521")

    monkeypatch.setattr(audit_parallel, "verify_chain_parallel", broken)
    result = invoke("audit", "verify")
    assert result.exit_code == 1
    assert "error: unexpected ValueError" in result.stderr
    assert "in broken" in result.stderr  # the code location, for the bug report
    assert "CANARY" not in result.output
    assert "Traceback" not in result.output


def test_usage_errors_keep_their_own_message_and_status(invoke: Invoke) -> None:
    result = invoke("audit", "verify", "--no-such-option")
    assert result.exit_code == 2
    assert "No such option" in result.output
