"""The form under the v1 pack (rules/ketamine-infusion-v1): it works as before policy v2.

A clinic may still point ``SCREENING_RULES_DIR`` at the v1 pack: its pages, its ``conditions``
list (no "None of these") and its messages are unchanged.
"""

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.engine import Ruleset
from app.main import create_app, load_checked_ruleset
from tests.conftest import make_settings
from tests.factories import FixedClock
from tests.form.support import (
    V1_FEMALE_ANSWERS,
    V1_MALE_PAGES,
    V1_RULES,
    make_form_clinic,
    make_invitation,
    stored_screenings,
)


@pytest.fixture(scope="module")
def v1_ruleset() -> Ruleset:
    return load_checked_ruleset(V1_RULES)


@pytest.fixture
def v1_client(
    database_url: str, session_factory: sessionmaker[Session], v1_ruleset: Ruleset
) -> Iterator[TestClient]:
    settings = make_settings(database_url, rules_path=V1_RULES)
    app = create_app(settings, sessionmaker=session_factory, clock=FixedClock(), ruleset=v1_ruleset)
    with TestClient(app) as client:
        yield client


def test_the_v1_walk_stores_the_v1_answers(v1_client: TestClient, session: Session) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    for page, data in V1_MALE_PAGES:
        response = v1_client.post(f"{link}/q/{page}", data=data, follow_redirects=False)
        assert response.status_code == 303, page
    assert response.headers["location"] == f"{link}/check"
    check = v1_client.get(f"{link}/check").text
    assert "Has a doctor ever told you that you had any of these?" not in check
    v1_client.post(f"{link}/submit")
    (stored,) = stored_screenings(session, clinic_id)
    male = {k: v for k, v in V1_FEMALE_ANSWERS.items() if k not in {"pregnant", "breastfeeding"}}
    assert stored["answers"] == male | {"sex_at_birth": "male"}
    assert stored["result"]["ruleset"]["version"] == "1.0.0"


def test_the_v1_conditions_list_keeps_its_message(v1_client: TestClient, session: Session) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    v1_client.post(f"{link}/q/{V1_MALE_PAGES[0][0]}", data=V1_MALE_PAGES[0][1])
    page = v1_client.post(f"{link}/q/your_condition", data={"prior_treatments_tried": "no"}).text
    assert "Select at least one option. If none of them fit, select the last one." in page
    assert "data-behaviour" not in page
    assert "checkboxes.js" not in page
    assert re.search(r'value="other"', page)
