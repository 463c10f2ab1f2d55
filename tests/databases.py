"""Scratch PostgreSQL databases beside the test one (the conftest's fixtures create them)."""

import pytest
from sqlalchemy import create_engine, make_url, text


def create_postgres_database(server_url: str, name: str) -> str:
    """(Re)create an empty database named ``name`` on ``server_url``'s server; return its URL."""
    if "test" not in name and "scratch" not in name:
        pytest.fail(f"refusing to recreate {name!r}: the test database name must contain 'test'")
    _admin(
        server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server_url: str, name: str) -> None:
    """Drop ``name`` (its connections closed first)."""
    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(server_url: str, *statements: str) -> None:
    admin = create_engine(
        make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        for statement in statements:
            connection.execute(text(statement))
    admin.dispose()
