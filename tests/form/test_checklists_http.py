"""Checklists and "I'm not sure" choices in the form over plain HTTP (no JavaScript).

Policy v2 section 1.2: a checklist is a multi_choice item with the reserved options "unsure"
and "none"; "None of these" is exclusive and a checklist is never left empty. Without
JavaScript, the server answers a contradictory or empty checklist with the contract's message.
"""

import html
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy.orm import Session

from app.engine.translations import load_translations
from app.settings import default_rules_path
from tests.form.support import MALE_ANSWERS, MALE_PAGES, make_form_clinic, make_invitation
from tests.form.support import stored_screenings as stored

BEFORE_HEART = MALE_PAGES[: [page for page, _ in MALE_PAGES].index("heart")]
MESSAGES = {
    ("none_with_others", "en"): (
        "Select 'None of these' on its own, or untick it and select the ones that apply."
    ),
    ("empty", "en"): "Select all that apply, or select 'None of these'.",
    ("none_with_others", "es"): (
        "Seleccione solo «{none}», o quite esa marca y seleccione las opciones que correspondan."
    ),
    ("empty", "es"): "Seleccione todas las opciones que correspondan, o seleccione «{none}».",
}


def _post(client: TestClient, url: str, data: dict[str, Any]) -> Response:
    return client.post(url, data=data, follow_redirects=False)


def _errors(page: str) -> list[str]:
    found = re.findall(r'class="error-message"[^>]*>(.*?)</p>', page, re.S)
    return [
        html.unescape(re.sub(r"<[^>]+>", "", one)).replace("Error:", "").strip() for one in found
    ]


def _summary(page: str) -> list[str]:
    listed = page.split("error-summary__list")[1].split("</ul>")[0]
    return [html.unescape(one) for one in re.findall(r'<a href="#([^"]+)">', listed)]


def _at_heart(client: TestClient, session: Session, language: str = "en") -> str:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id, language=language)
    for page, data in BEFORE_HEART:
        assert _post(client, f"{link}/q/{page}", data).status_code == 303, page
    return link


def _spanish_none() -> str:
    catalogue = load_translations(Path(default_rules_path()))["es"]
    return catalogue.text("items.heart_brain_history.options.none", "None of these")


def test_a_checklist_is_govuk_checkboxes_with_an_exclusive_none_after_or(
    client: TestClient, session: Session
) -> None:
    link = _at_heart(client, session)
    page = client.get(f"{link}/q/heart").text
    assert '<script src="/form/static/checkboxes.js" defer></script>' in page
    group = page.split('data-module="checkboxes"')[1].split("</fieldset>")[0]
    values = re.findall(r'value="([^"]+)"', group)
    assert values == [
        "aneurysm", "avm", "brain_bleed", "stroke", "tia", "heart_attack", "coronary_disease",
        "irregular_heartbeat", "unsure", "none",
    ]  # fmt: skip
    unsure, divider, none = (
        group.index('value="unsure"'),
        group.index('<p class="choice-divider">or</p>'),
        group.index('value="none"'),
    )
    assert unsure < divider < none
    assert group.count("data-behaviour") == 1
    assert re.search(r'value="none"[^>]*data-behaviour="exclusive"', group)
    assert ">I&#39;m not sure about one or more of these</label>" in group
    assert ">None of these</label>" in group
    assert "Select all that apply." in page
    # Pages without a checklist load no checkbox script; the v1 list has no exclusive option.
    condition = client.get(f"{link}/q/your_condition").text
    assert "checkboxes.js" not in condition
    assert "data-behaviour" not in condition


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize(
    ("case", "ticked"),
    [("none_with_others", ["stroke", "none"]), ("none_with_others", ["unsure", "none"]),
     ("empty", [])],
)  # fmt: skip
def test_a_contradictory_or_empty_checklist_gets_the_contract_message(
    client: TestClient, session: Session, language: str, case: str, ticked: list[str]
) -> None:
    link = _at_heart(client, session, language)
    response = _post(
        client, f"{link}/q/heart", {"heart_failure": "no", "heart_brain_history": ticked}
    )
    assert response.status_code == 200
    assert re.search(r"<title>Error: ", response.text)
    message = MESSAGES[case, language].format(none=_spanish_none())
    assert _errors(response.text) == [message]
    assert _summary(response.text) == ["heart_brain_history"]  # the first checkbox
    assert f"{message}</a>" in html.unescape(response.text)
    # What was ticked stays ticked, and nothing was saved.
    for value in ticked:
        assert re.search(rf'value="{value}" checked', response.text)
    assert 'value="no" checked' in response.text  # heart failure, from the same submission
    saved = client.get(f"{link}/q/heart").text
    assert " checked" not in saved.split('data-module="checkboxes"')[1]
    assert " checked" not in saved.split('name="heart_failure"')[2]  # "no" was not saved


@pytest.mark.parametrize(
    ("history", "following"),
    [(["none"], "other_health"), (["aneurysm", "irregular_heartbeat"], "other_health"),
     (["stroke"], "heart-2"), (["heart_attack", "unsure"], "heart-2"), (["unsure"], "heart-2")],
)  # fmt: skip
def test_recent_events_are_asked_only_when_the_history_calls_for_them(
    client: TestClient, session: Session, history: list[str], following: str
) -> None:
    link = _at_heart(client, session)
    response = _post(
        client, f"{link}/q/heart", {"heart_failure": "no", "heart_brain_history": history}
    )
    assert response.headers["location"] == f"{link}/q/{following}"
    recent = client.get(f"{link}/q/heart-2", follow_redirects=False)
    assert recent.status_code == (200 if following == "heart-2" else 303)


def _walk(client: TestClient, link: str, steps: list[tuple[str, dict[str, Any]]]) -> None:
    for page, data in steps:
        assert _post(client, f"{link}/q/{page}", data).status_code == 303, page


def test_check_answers_lists_the_ticked_conditions_in_words_and_a_change_drops_the_follow_up(
    client: TestClient, session: Session
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    steps = [
        (page, data)
        for page, data in MALE_PAGES
        if page not in {"heart", "other_health", "mental_health"}
    ]
    _walk(client, link, steps[:-1])
    _walk(client, link, [
        ("heart", {"heart_failure": "no", "heart_brain_history": ["stroke", "unsure"]}),
        ("heart-2", {"heart_brain_recent": ["none"]}),
        ("other_health", {"other_medical_conditions": ["overactive_thyroid", "glaucoma"]}),
        ("other_health-2", {"thyroid_controlled": "yes"}),
        ("mental_health", {"schizophrenia": "no", "psychosis_or_mania": "unsure",
                           "substance_use": "no"}),
        steps[-1],
    ])  # fmt: skip
    check = html.unescape(client.get(f"{link}/check").text)
    rows = dict(re.findall(r"<dt[^>]*>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", check, re.S))
    assert rows["Has a doctor ever told you that you had any of these?"] == (
        "A stroke<br>I'm not sure about one or more of these"
    )
    assert rows["In the past 12 months, have you had any of these?"] == "None of these"
    assert rows["Do you have any of these health problems now, or take medicine for them?"] == (
        "Glaucoma or high pressure inside the eye<br>"
        "An overactive thyroid (hyperthyroidism), such as Graves' disease"
    )
    assert rows["Have you ever had psychosis or mania?"] == "I'm not sure"
    assert 'href="' + f"{link}/q/heart?change=1#heart_brain_history" in check
    # Changing the history to "None of these" removes the recent-events answer.
    change = {"heart_failure": "no", "heart_brain_history": ["none"], "change": "1"}
    assert _post(client, f"{link}/q/heart", change).headers["location"] == f"{link}/check"
    check = html.unescape(client.get(f"{link}/check").text)
    assert "In the past 12 months, have you had any of these?" not in check
    client.post(f"{link}/submit")
    answers = stored(session, clinic_id)[0]["answers"]
    assert "heart_brain_recent" not in answers
    assert answers["heart_brain_history"] == ["none"]
    assert answers["other_medical_conditions"] == ["glaucoma", "overactive_thyroid"]
    assert answers["psychosis_or_mania"] == "unsure"
    assert answers == MALE_ANSWERS | {
        "other_medical_conditions": ["glaucoma", "overactive_thyroid"],
        "thyroid_controlled": "yes",
        "psychosis_or_mania": "unsure",
    }


def test_a_choice_with_unsure_shows_it_last_after_or_like_yes_no_unsure(
    client: TestClient, session: Session
) -> None:
    clinic_id, _ = make_form_clinic(session)
    link = make_invitation(session, clinic_id=clinic_id)
    _walk(client, link, MALE_PAGES[: [p for p, _ in MALE_PAGES].index("mental_health")])
    page = client.get(f"{link}/q/mental_health").text
    for item_id in ("schizophrenia", "psychosis_or_mania", "substance_use"):
        group = page.split(f'aria-describedby="{item_id}-hint')[1].split("</fieldset>")[0]
        values = re.findall(r'value="([^"]+)"', group)
        assert values[-1] == "unsure"
        assert group.index('<p class="choice-divider">or</p>') < group.index('value="unsure"')
        assert group.count("choice-divider") == 1
        assert "I&#39;m not sure</label>" in group
        assert 'type="checkbox"' not in group
    assert "checkboxes.js" not in page
