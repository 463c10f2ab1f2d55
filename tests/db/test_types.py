"""Portable types: aware UTC datetimes survive a round trip on both backends."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session

from app.db.models import Clinic


def test_datetimes_come_back_aware_utc_with_microseconds(session: Session) -> None:
    created = datetime(2026, 6, 15, 9, 30, 1, 123456, tzinfo=timezone(timedelta(hours=-5)))
    clinic = Clinic(name="Types clinic", form_origins=["https://a.example"], created_at=created)
    session.add(clinic)
    session.flush()
    session.expire_all()
    loaded = session.get_one(Clinic, clinic.id)
    assert loaded.created_at == created
    assert loaded.created_at.tzinfo == UTC
    assert loaded.created_at.microsecond == 123456
    assert loaded.form_origins == ["https://a.example"]


def test_naive_datetimes_are_refused(session: Session) -> None:
    session.add(Clinic(name="Naive clinic", form_origins=[], created_at=datetime(2026, 1, 1)))  # noqa: DTZ001
    with pytest.raises(Exception, match="naive datetime"):
        session.flush()
