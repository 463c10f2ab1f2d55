"""The patient form over plain HTTP (no browser, no JavaScript): flow, branching, links, headers."""

import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy.orm import Session

from app.db.models import Screening
from tests.factories import NOW, auth, count
from tests.form.support import (
    FEMALE_ANSWERS,
    FEMALE_PAGES,
    MALE_ANSWERS,
    MALE_PAGES,
    PHONE,
    make_form_clinic,
    make_invitation,
    stored_screenings,
)

DECISION_WORDS = (
    "candidate",
    "not_candidate",
    "needs_review",
    "exclude",
    "flag",
    "pregnancy_or_breastfeeding",
)


def _post(client: TestClient, url: str, data: dict[str, Any]) -> Response:
    return client.post(url, data=data, follow_redirects=False)


def _complete(client: TestClient, link: str, steps: list[tuple[str, dict[str, Any]]]) -> Response:
    for page, data in steps:
        response = _post(client, f"{link}/q/{page}", data)
        assert response.status_code == 303, (page, _errors(response.text))
    assert response.headers["location"] == f"{link}/check"
    return client.post(f"{link}/submit", follow_redirects=False)


def _errors(html: str) -> list[str]:
    return re.findall(r'class="error-message"[^>]*>(.*?)</p>', html, re.S)


def test_female_path_asks_pregnancy_and_stores_what_the_api_stores(
    client: TestClient, session: Session
) -> None:
    clinic_id, key = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    response = _post(client, f"{link}/q/about_you", dict(FEMALE_PAGES[0][1]))
    assert response.headers["location"] == f"{link}/q/your_condition"
    submitted = _complete(client, link, FEMALE_PAGES)
    assert submitted.headers["location"] == f"{link}/done"
    done = client.get(f"{link}/done")
    assert "Your answers have been sent" in done.text
    assert re.search(r'class="reference">[0-9A-F]{4}-[0-9A-F]{4}<', done.text)
    assert not [word for word in DECISION_WORDS if word in done.text.lower()]
    api = client.post(
        "/v1/screenings",
        json={"questionnaire": "ketamine-infusion-candidacy", "subject": {"reference": "MRN-7"},
              "answers": FEMALE_ANSWERS},
        headers=auth(key),
    )  # fmt: skip
    assert api.status_code == 201
    rows = {row["source"]: row for row in stored_screenings(session, clinic_id)}
    form_row, api_row = rows["form"], rows["api"]
    assert form_row["answers"] == FEMALE_ANSWERS == api_row["answers"]
    assert form_row["decision"] == api_row["decision"] == "needs_review"
    for field in ("decision", "flags", "ruleset", "as_of", "subject"):
        assert form_row["result"][field] == api_row["result"][field]


def test_changing_sex_at_birth_removes_the_pregnancy_answers(
    client: TestClient, session: Session
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    for page, data in FEMALE_PAGES:
        _post(client, f"{link}/q/{page}", data)
    assert "Are you pregnant?" in client.get(f"{link}/check").text
    change = _post(
        client, f"{link}/q/about_you", FEMALE_PAGES[0][1] | {"sex_at_birth": "male", "change": "1"}
    )
    assert change.headers["location"] == f"{link}/check"
    check = client.get(f"{link}/check").text
    assert "Are you pregnant?" not in check
    assert "Male" in check
    assert client.get(f"{link}/q/pregnancy", follow_redirects=False).status_code == 303
    client.post(f"{link}/submit")
    assert stored_screenings(session, clinic_id)[0]["answers"] == MALE_ANSWERS


def test_change_that_enables_a_question_asks_it_before_the_check_page(
    client: TestClient, session: Session
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    for page, data in MALE_PAGES:
        _post(client, f"{link}/q/{page}", data)
    response = _post(client, f"{link}/q/ketamine", {"ketamine_before": "yes", "change": "1"})
    assert response.headers["location"] == f"{link}/q/ketamine-2"
    response = _post(
        client,
        f"{link}/q/ketamine-2",
        {"ketamine_reaction": "no", "ketamine_allergy": "no", "change": "1"},
    )
    assert response.headers["location"] == f"{link}/check"


def test_male_path_never_shows_pregnancy_pages(client: TestClient, session: Session) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    response = _post(client, f"{link}/q/about_you", MALE_PAGES[0][1])
    response = _post(client, f"{link}/q/your_condition", MALE_PAGES[1][1])
    assert response.headers["location"] == f"{link}/q/blood_pressure"
    assert _complete(client, link, MALE_PAGES).status_code == 303
    assert stored_screenings(session, clinic_id)[0]["answers"] == MALE_ANSWERS


def test_answers_survive_reload_and_back(client: TestClient, session: Session) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    _post(client, f"{link}/q/about_you", FEMALE_PAGES[0][1])
    page = client.get(f"{link}/q/about_you").text
    for value in ('value="3"', 'value="27"', 'value="1985"'):
        assert value in page
    assert re.search(r'value="female" checked', page)
    assert 'autocomplete="bday-month"' in page
    assert 'autocomplete="bday-year"' in page
    start = client.get(link).text
    assert "Continue where you left off" in start


def _dob(month: str, day: str, year: str) -> dict[str, str]:
    return {"date_of_birth-month": month, "date_of_birth-day": day, "date_of_birth-year": year}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Select an answer."),
        (_dob("13", "1", "1990"), "Enter the month"),
        (_dob("2", "30", "1990"), "Enter a real date"),
        (_dob("2", "3", "2030"), "today or in the past"),
        (_dob("2", "", "1990"), "must include a month, a day and a year"),
    ],
)
def test_invalid_answers_show_an_error_summary_and_inline_messages(
    client: TestClient, session: Session, data: dict[str, str], message: str
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    response = _post(client, f"{link}/q/about_you", data)
    assert response.status_code == 200
    assert re.search(r"<title>Error: ", response.text)
    assert "There is a problem" in response.text
    assert any(message in error for error in _errors(response.text))
    assert 'href="#' in response.text.split("error-summary__list")[1]


def test_engine_range_errors_are_in_patient_language(client: TestClient, session: Session) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    for page, data in MALE_PAGES[:3]:
        _post(client, f"{link}/q/{page}", data)
    response = _post(
        client, f"{link}/q/blood_pressure-2", {"bp_controlled": "yes", "systolic_bp": "400"}
    )
    assert any("Enter a number from 50 to 300." in error for error in _errors(response.text))
    both = _post(
        client,
        f"{link}/q/blood_pressure-2",
        {"bp_controlled": "yes", "systolic_bp": "120", "reading-unknown": "yes"},
    )
    assert any("but not both" in error for error in _errors(both.text))


def test_form_pages_send_the_clinic_framing_policy_and_no_referrer(
    client: TestClient, session: Session
) -> None:
    clinic_id, _ = make_form_clinic(session, origins=["https://www.clinic.example"])
    link = make_invitation(session, clinic_id=clinic_id)
    unknown = f"/form/{clinic_id}/nope"
    for path in (link, f"{link}/q/about_you", f"{link}/check", unknown):
        response = client.get(path)
        policy = response.headers["content-security-policy"]
        # A bad token does not learn the clinic's sites: the default framing policy.
        framing = "'none'" if path == unknown else "https://www.clinic.example"
        assert f"frame-ancestors {framing}" in policy
        assert "default-src 'none'" in policy
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "set-cookie" not in response.headers
        assert "x-frame-options" not in response.headers  # it would override frame-ancestors
    other_id, _ = make_form_clinic(session)
    other = make_invitation(session, clinic_id=other_id)
    assert "frame-ancestors 'none'" in client.get(other).headers["content-security-policy"]


def test_clinic_name_and_phone_are_on_every_page(client: TestClient, session: Session) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    for path in (link, f"{link}/q/about_you", f"{link}/q/your_condition"):
        page = client.get(path).text
        assert PHONE in page
        assert 'href="tel:5550102030"' in page


def test_spanish_pages_have_lang_es_and_spanish_questions(
    client: TestClient, session: Session
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id, language="es")
    page = client.get(f"{link}/q/about_you").text
    assert '<html lang="es"' in page
    assert "¿Cuál es su fecha de nacimiento?" in page
    assert ">Mes<" in page
    assert 'lang="en" hreflang="en">English<' in page
    english = client.get(f"{link}/q/about_you?lang=en").text
    assert '<html lang="en"' in english
    assert '<html lang="en"' in client.get(link).text  # the choice is remembered


@pytest.mark.parametrize("case", ["tampered", "other_clinic", "unknown_clinic", "expired"])
def test_unusable_links_get_a_friendly_page(
    client: TestClient, session: Session, case: str
) -> None:
    clinic_id, _ = make_form_clinic(session)
    other_id, _ = make_form_clinic(session, phone="(555) 999-0000")
    link = make_invitation(session, clinic_id=clinic_id)
    prefix, token = link.rsplit("/", 1)
    path = {
        "tampered": f"{prefix}/{token[:-1]}{'A' if token[-1] != 'A' else 'B'}",
        "other_clinic": f"/form/{other_id}/{token}",
        "unknown_clinic": f"/form/not-a-clinic/{token}",
        "expired": make_invitation(session, clinic_id=clinic_id, now=NOW - timedelta(days=8)),
    }[case]
    for suffix in ("", "/q/about_you", "/check"):
        response = client.get(path + suffix)
        assert response.status_code == (410 if case == "expired" else 404)
        assert response.headers["content-type"].startswith("text/html")
        title = "This link has expired" if case == "expired" else "This link does not work"
        assert f"<h1>{title}</h1>" in response.text
        assert "Traceback" not in response.text
    posted = _post(client, path + "/submit", {})
    assert posted.status_code == (410 if case == "expired" else 404)
    assert count(session, Screening) == 0


def test_a_used_link_stores_nothing_new(client: TestClient, session: Session) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    _complete(client, link, MALE_PAGES)
    assert count(session, Screening) == 1
    again = client.post(f"{link}/submit", follow_redirects=False)
    assert again.status_code == 410
    assert "You have already sent your answers" in again.text
    assert _post(client, f"{link}/q/about_you", MALE_PAGES[0][1]).status_code == 410
    assert count(session, Screening) == 1
    assert client.get(f"{link}/done").status_code == 200  # the confirmation stays readable


def test_tokens_never_reach_the_logs(
    client: TestClient, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    token = link.rsplit("/", 1)[1]
    with caplog.at_level(logging.DEBUG):
        _complete(client, link, MALE_PAGES)
        client.get(f"{link}/done")
        client.get(link[:-2] + "xx")
    # The test client itself (httpx) logs the URLs it requests; the service must not.
    server = [str(vars(r)) for r in caplog.records if not r.name.startswith("httpx")]
    assert any("/form/{clinic_id}/{token}/submit" in record for record in server)
    assert not [record for record in server if token in record or token[:12] in record]
