"""A leaked invitation link: who used it is audited (never the answers); a bad one tells nothing."""

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import AuditEvent, Clinic, Invitation
from tests.factories import NOW
from tests.form.support import FEMALE_PAGES, PHONE, make_form_clinic, make_invitation


def _head(session: Session) -> int:
    return session.scalar(select(func.max(AuditEvent.seq))) or 0


def _events_after(session: Session, seq: int) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
    return list(session.scalars(query))


def test_viewing_and_saving_a_draft_are_audited_as_the_invitation_without_answers(
    client: TestClient, session: Session
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    invitation = session.scalars(select(Invitation).where(Invitation.clinic_id == clinic_id)).one()
    before = _head(session)
    assert client.get(link).status_code == 200
    assert client.get(f"{link}/q/about_you").status_code == 200
    page, data = FEMALE_PAGES[0]
    saved = client.post(f"{link}/q/{page}", data=data, follow_redirects=False)
    assert saved.status_code == 303
    events = _events_after(session, before)
    assert [(e.action, (e.detail or {}).get("page")) for e in events] == [
        ("form.viewed", "start"),
        ("form.viewed", "question"),
        ("form.draft_saved", None),
    ]
    for event in events:
        assert (event.actor_type.value, event.actor_id) == ("invitation", str(invitation.id))
        assert (event.clinic_id, event.target_id) == (clinic_id, str(invitation.id))
        recorded = json.dumps(event.detail)
        for answer in ("1985", "March", "female", "date_of_birth", "sex_at_birth"):
            assert answer not in recorded
    token = link.rsplit("/", 1)[1]
    assert not [e for e in events if token in json.dumps(e.detail) + str(e.target_id)]


def test_a_page_shown_again_with_errors_is_a_view_and_saves_nothing(
    client: TestClient, session: Session
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    before = _head(session)
    response = client.post(f"{link}/q/about_you", data={"sex_at_birth": "female"})
    assert response.status_code == 200
    assert [e.action for e in _events_after(session, before)] == ["form.viewed"]


@pytest.mark.parametrize("case", ["tampered", "expired"])
def test_a_bad_or_expired_link_never_names_the_clinic(
    client: TestClient, session: Session, case: str
) -> None:
    clinic_id, _ = make_form_clinic(session, origins=["https://www.lakeside-pain.example"])
    name = session.get_one(Clinic, clinic_id).name
    good = make_invitation(session, clinic_id=clinic_id)
    assert name in client.get(good).text  # the real link does show it
    link = {
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "expired": make_invitation(session, clinic_id=clinic_id, now=NOW - timedelta(days=8)),
    }[case]
    before = _head(session)
    for suffix in ("", "/q/about_you", "/check"):
        response = client.get(link + suffix)
        assert response.status_code == (410 if case == "expired" else 404)
        for secret in (name, PHONE, "lakeside-pain"):
            assert secret not in response.text
            assert secret not in str(response.headers)
        assert "Ask the clinic that sent you the link" in response.text
    assert _events_after(session, before) == []  # nothing was viewed
