"""Readiness: the database answers and its schema is at the migrations' head."""

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session


def database_problem(session: Session, *, expected_revisions: set[str]) -> str | None:
    """Return why the database is not ready, or None when it is reachable and migrated."""
    try:
        current = set(session.scalars(text("SELECT version_num FROM alembic_version")))
    except SQLAlchemyError:
        return "database unreachable or not migrated"
    if current != expected_revisions:
        return "database schema is not at the expected revision"
    return None
