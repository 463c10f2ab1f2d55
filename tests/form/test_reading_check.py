"""The blood pressure check (issue 17): a swapped or impossible reading is confirmed first,
and the physician's page says the patient confirmed it. No page says "Contact" without a
phone number."""

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import AuditEvent, Clinic, Screening
from tests.form.support import (
    FEMALE_PAGES,
    PHONE,
    make_form_clinic,
    make_invitation,
    stored_screenings,
)
from tests.review.seed import https_client, make_user, sign_in

READING_PAGE = "blood_pressure-2"
SWAPPED = {"bp_controlled": "yes", "systolic_bp": "76", "diastolic_bp": "118"}


def _post(client: TestClient, url: str, data: dict[str, Any]) -> Response:
    return client.post(url, data=data, follow_redirects=False)


def _to_reading(client: TestClient, link: str) -> None:
    for page, data in FEMALE_PAGES:
        if page == READING_PAGE:
            return
        assert _post(client, f"{link}/q/{page}", data).status_code == 303, page


def _finish(client: TestClient, link: str) -> None:
    after = [step for step in FEMALE_PAGES if step[0] != READING_PAGE]
    for page, data in after[[p for p, _ in after].index("head_and_brain") :]:
        assert _post(client, f"{link}/q/{page}", data).status_code == 303, page
    assert _post(client, f"{link}/submit", {}).headers["location"] == f"{link}/done"


def test_a_swapped_reading_asks_the_patient_to_check(client: TestClient, session: Session) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    _to_reading(client, link)
    shown = _post(client, f"{link}/q/{READING_PAGE}", SWAPPED)
    assert shown.status_code == 200
    assert "Check your reading" in shown.text
    assert "The top number is usually bigger than the bottom number." in shown.text
    assert 'name="reading-confirmed" type="checkbox" value="76/118"' in shown.text
    assert 'value="118"' in shown.text  # what they typed is kept
    assert "<title>Error:" not in shown.text  # a check, not an error
    # Corrected: no check, the form goes on.
    corrected = SWAPPED | {"systolic_bp": "118", "diastolic_bp": "76"}
    fixed = _post(client, f"{link}/q/{READING_PAGE}", corrected)
    assert fixed.status_code == 303


def test_numbers_a_monitor_cannot_show_are_checked_and_confirmations_are_per_reading(
    client: TestClient, session: Session
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    _to_reading(client, link)
    high = _post(client, f"{link}/q/{READING_PAGE}", SWAPPED | {"systolic_bp": "290"})
    assert "A home blood pressure monitor does not usually show these numbers." in high.text
    other = SWAPPED | {"systolic_bp": "80", "reading-confirmed": "76/118"}
    assert _post(client, f"{link}/q/{READING_PAGE}", other).status_code == 200


def test_a_confirmed_reading_is_stored_as_given_and_shown_to_the_physician(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    _to_reading(client, link)
    confirmed = _post(client, f"{link}/q/{READING_PAGE}", SWAPPED | {"reading-confirmed": "76/118"})
    assert confirmed.status_code == 303
    _finish(client, link)
    [stored] = stored_screenings(session, clinic_id)
    assert (stored["answers"]["systolic_bp"], stored["answers"]["diastolic_bp"]) == (76, 118)
    screening_id = str(session.scalars(select(Screening.id)).one())
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "form.reading_confirmed")
    ).all()
    assert [(e.target_id, e.detail) for e in events] == [
        (screening_id, {"items": ["systolic_bp", "diastolic_bp"]})
    ]
    clinic = session.get_one(Clinic, clinic_id).name
    make_user(session, clinic=clinic, email="reader@example.org", name="Dr Reader")
    physician = https_client(app)
    sign_in(physician, "reader@example.org")
    page = physician.get(f"/review/screenings/{screening_id}").text
    assert "76/118 mmHg (the patient confirmed these numbers" in page
    assert "Sent by: Patient form" in page


def test_no_page_says_contact_without_a_phone_number(client: TestClient, session: Session) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    with_phone = client.get(link).text
    assert "Need help? Call" in with_phone
    assert PHONE in with_phone
    session.get_one(Clinic, clinic_id).phone = None  # a clinic set up before phones were required
    session.flush()
    pages = [client.get(link).text, client.get(f"{link}/q/about_you").text]
    _to_reading(client, link)
    _post(
        client, f"{link}/q/{READING_PAGE}", SWAPPED | {"systolic_bp": "128", "diastolic_bp": "82"}
    )
    _finish(client, link)
    pages += [client.get(f"{link}/done").text, client.get(link).text]  # done, "already sent"
    assert "You have already sent your answers" in pages[-1]
    for html in pages:
        assert "Contact" not in html
        assert "Need help" not in html
