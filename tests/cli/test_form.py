"""`screening form purge-drafts`: expired, unsubmitted invitations lose their saved answers."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import AuditEvent, Invitation
from app.db.unit import session_scope
from tests.audit.factories import make_clinic
from tests.cli.conftest import Invoke


def _invitation(clinic_id: uuid.UUID, *, expires_in: timedelta, submitted: bool) -> Invitation:
    now = datetime.now(UTC)
    return Invitation(
        id=uuid.uuid4(),
        clinic_id=clinic_id,
        token_hash=uuid.uuid4().hex * 2,
        key_id="k1",
        subject_ct=b"subject",
        draft_ct=b"draft",
        language="en",
        created_at=now - timedelta(days=8),
        expires_at=now + expires_in,
        submitted_at=now if submitted else None,
    )


def test_purge_deletes_only_expired_unsubmitted_drafts(
    invoke: Invoke, empty_database_url: str
) -> None:
    url = empty_database_url
    migrate.upgrade(migrate.make_config(database_url=url))
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        clinic = make_clinic(session)
        expired = _invitation(clinic.id, expires_in=timedelta(days=-1), submitted=False)
        open_ = _invitation(clinic.id, expires_in=timedelta(days=3), submitted=False)
        sent = _invitation(clinic.id, expires_in=timedelta(days=-1), submitted=True)
        session.add_all([expired, open_, sent])

    result = invoke("form", "purge-drafts", env={"SCREENING_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "deleted the saved answers of 1 expired" in result.stdout

    with session_scope(make_sessionmaker(engine)) as session:
        drafts = {row.id: row.draft_ct for row in session.scalars(select(Invitation))}
        assert drafts == {expired.id: None, open_.id: b"draft", sent.id: b"draft"}
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert event is not None
        assert (event.action, event.detail) == ("invitation.drafts_purged", {"invitations": 1})
    again = invoke("form", "purge-drafts", env={"SCREENING_DATABASE_URL": url})
    assert "of 0 expired" in again.stdout
    engine.dispose()
