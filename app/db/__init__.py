"""Persistence: SQLAlchemy base, typed models, engine, session scope and migrations."""
