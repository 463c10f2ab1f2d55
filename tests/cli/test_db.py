"""`screening db upgrade`."""

from sqlalchemy import inspect

from app.db.engine import make_engine
from tests.cli.conftest import Invoke


def test_db_upgrade_creates_the_schema(invoke: Invoke, empty_database_url: str) -> None:
    result = invoke("db", "upgrade", env={"SCREENING_DATABASE_URL": empty_database_url})
    assert result.exit_code == 0, result.output
    assert "upgraded to head" in result.stdout
    engine = make_engine(empty_database_url)
    assert {"screening", "audit_event", "api_key"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_invalid_configuration_is_reported_without_values(invoke: Invoke) -> None:
    result = invoke("db", "upgrade", env={"SCREENING_DATABASE_URL": "mysql://secret-host/x"})
    assert result.exit_code == 1
    assert "database_url" in result.stderr
    assert "secret-host" not in result.stderr
