"""The detail page of a policy v2 screening: checklists in words, which option fired which
rule, what the patient was not sure about; always in the wording of the stored pack."""

import copy
import re
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.engine import Ruleset, load_ruleset, ruleset_from_document
from app.engine.model import MultiChoiceItem
from tests.factories import CANDIDATE_ANSWERS, V1_CANDIDATE_ANSWERS, FixedClock, make_screening
from tests.review.seed import Seeded, https_client, seed_queue, sign_in

V1_PACK = Path(__file__).resolve().parents[2] / "rules" / "ketamine-infusion-v1"


class _ByClass(HTMLParser):
    """The text of every element carrying a class, whitespace collapsed (nesting kept)."""

    VOID = frozenset({"br", "hr", "img", "input", "link", "meta"})

    def __init__(self, css_class: str) -> None:
        super().__init__()
        self.css_class = css_class
        self.open: list[tuple[str, list[str] | None]] = []
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        self.open.append((tag, [] if self.css_class in classes else None))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            name, parts = self.open.pop()
            if parts is not None:
                self.found.append(" ".join("".join(parts).split()))
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, parts in self.open:
            if parts is not None:
                parts.append(data)


def texts(html: str, css_class: str) -> list[str]:
    """The text of each element with ``css_class``, in document order of their ends."""
    parser = _ByClass(css_class)
    parser.feed(html)
    return parser.found


def _item(ruleset: Ruleset, item_id: str) -> MultiChoiceItem:
    item = next(i for i in ruleset.questionnaire.items if i.id == item_id)
    assert isinstance(item, MultiChoiceItem)
    return item


def _option(ruleset: Ruleset, item_id: str, value: str) -> str:
    return next(o.text for o in _item(ruleset, item_id).options if o.value == value)


def _title(ruleset: Ruleset, rule_id: str) -> str:
    return next(r.title for r in ruleset.rules if r.id == rule_id)


@pytest.fixture
def seeded(session: Session, ruleset: Ruleset, clock: FixedClock) -> Seeded:
    return seed_queue(session, ruleset=ruleset, now=clock.now())


@pytest.fixture
def browser(app: FastAPI, seeded: Seeded) -> Iterator[TestClient]:
    with https_client(app) as client:
        sign_in(client, seeded.physician)
        yield client


def _page(browser: TestClient, screening_id: str) -> str:
    response = browser.get(f"/review/screenings/{screening_id}")
    assert response.status_code == 200, response.text
    return response.text


def _add(session: Session, ruleset: Ruleset, seeded: Seeded, answers: dict[str, Any]) -> str:
    body = make_screening(
        session, ruleset=ruleset, clinic_id=seeded.clinic_id, answers=answers, reference="MRN-X"
    )
    return str(body["id"])


def test_the_seeded_candidate_is_a_candidate_under_v2(browser: TestClient, seeded: Seeded) -> None:
    # The seed answers every v2 item; otherwise each v2 rule is unknown and nothing is clean.
    page = _page(browser, seeded.candidate)
    assert texts(page, "tag-decision-candidate") == ["Candidate"]
    assert "MRN-CANDIDATE" not in browser.get("/review").text


def test_a_checklist_shows_the_ticked_conditions_in_words(
    browser: TestClient, seeded: Seeded, ruleset: Ruleset
) -> None:
    page = _page(browser, seeded.queue[4])
    ticked = texts(page, "ticked")
    heart_attack = _option(ruleset, "heart_brain_history", "heart_attack")
    unsure = _option(ruleset, "heart_brain_history", "unsure")
    seizures = _option(ruleset, "other_medical_conditions", "seizures")
    glaucoma = _option(ruleset, "other_medical_conditions", "glaucoma")
    coronary = _title(ruleset, "coronary_or_cerebrovascular_disease")
    history = next(t for t in ticked if heart_attack in t)
    assert history.startswith(f"{heart_attack} Fired: {coronary}")
    assert f"Not sure: {unsure}" in history
    # "None of these" for the follow-up, in the pack's words; the v1 item is a list too.
    assert _option(ruleset, "heart_brain_recent", "none") in ticked
    assert "Migraine headaches" in ticked
    other = next(t for t in ticked if seizures in t)
    assert other.index(seizures) < other.index(glaucoma)  # the order the form listed them
    # No option or rule ids anywhere a physician reads.
    visible = " ".join(texts(page, "answers"))
    for raw in ("heart_attack", "unsure", "glaucoma", "none", "coronary_or_cerebrovascular"):
        assert raw not in visible


def test_each_ticked_option_names_exactly_the_rules_it_fired(
    browser: TestClient, seeded: Seeded, ruleset: Ruleset
) -> None:
    page = _page(browser, seeded.queue[4])
    fired = {
        choice.split(" Fired: ")[0]: choice.split(" Fired: ")[1]
        for choice in texts(page, "choice-option")
        if " Fired: " in choice
    }
    assert fired == {
        _option(ruleset, "heart_brain_history", "heart_attack"): _title(
            ruleset, "coronary_or_cerebrovascular_disease"
        ),
        _option(ruleset, "other_medical_conditions", "seizures"): _title(
            ruleset, "seizure_disorder"
        ),
        _option(ruleset, "other_medical_conditions", "glaucoma"): _title(
            ruleset, "glaucoma_or_raised_eye_pressure"
        ),
    }
    # The fired flag names the option that fired it, not the whole list.
    flag = texts(page, "flag-review")
    coronary = next(f for f in flag if _title(ruleset, "coronary_or_cerebrovascular_disease") in f)
    heart_attack = _option(ruleset, "heart_brain_history", "heart_attack")
    assert f"Patient ticked: {heart_attack}" in coronary
    assert "not sure" not in coronary


def test_each_checklist_marks_its_own_rules(
    session: Session, browser: TestClient, seeded: Seeded, ruleset: Ruleset
) -> None:
    answers = CANDIDATE_ANSWERS | {
        "heart_brain_history": ["heart_attack"],
        "heart_brain_recent": ["heart_attack", "unsure"],
    }
    page = _page(browser, _add(session, ruleset, seeded, answers))
    history, recent = texts(page, "ticked")[1:3]  # after the v1 "conditions" list
    heart_attack = _option(ruleset, "heart_brain_recent", "heart_attack")
    assert (
        history == f"{heart_attack} Fired: {_title(ruleset, 'coronary_or_cerebrovascular_disease')}"
    )
    assert recent.startswith(
        f"{heart_attack} Fired: {_title(ruleset, 'recent_cardiac_or_cerebrovascular_event')} "
    )
    # A ticked listed option decides: "unsure" beside it leaves nothing open for that rule.
    assert texts(page, "unsure-summary") == []
    assert texts(page, "tag-decision-not_candidate") == ["Not a candidate"]


def test_the_unsure_list_says_which_conditions_were_not_ruled_out(
    browser: TestClient, seeded: Seeded, ruleset: Ruleset
) -> None:
    page = _page(browser, seeded.queue[4])
    (summary,) = texts(page, "unsure-list")
    history = _item(ruleset, "heart_brain_history")
    psychosis = next(i for i in ruleset.questionnaire.items if i.id == "psychosis_or_mania")
    assert history.text in summary
    assert psychosis.text in summary
    open_options = texts(page, "open-options")[0]
    for value, rule in [
        ("aneurysm", "aneurysm_avm_or_brain_bleed"),
        ("avm", "aneurysm_avm_or_brain_bleed"),
        ("brain_bleed", "aneurysm_avm_or_brain_bleed"),
        ("stroke", "previous_stroke"),
        ("irregular_heartbeat", "arrhythmia"),
    ]:
        assert (
            f"{_option(ruleset, 'heart_brain_history', value)} Affects: {_title(ruleset, rule)}"
            in (open_options)
        )
    # Ticked, or listed only by a rule that fired: nothing left open.
    for value in ("heart_attack", "tia", "coronary_disease"):
        assert _option(ruleset, "heart_brain_history", value) not in open_options
    assert "I'm not sure Not ruled out: " in summary
    for rule in ("psychosis_or_mania_recent", "psychosis_or_mania_history"):
        assert _title(ruleset, rule) in summary
    # Each unknown flag on the checklist says which of its own conditions stay open.
    stroke_flag = next(
        t for t in texts(page, "missing-flag") if _title(ruleset, "previous_stroke") in t
    )
    assert f"Not ruled out: {_option(ruleset, 'heart_brain_history', 'stroke')}" in stroke_flag
    assert _option(ruleset, "heart_brain_history", "aneurysm") not in stroke_flag


def test_a_choice_answer_shows_its_option_text(
    session: Session, browser: TestClient, seeded: Seeded, ruleset: Ruleset
) -> None:
    answers = CANDIDATE_ANSWERS | {"psychosis_or_mania": "yes_within_12_months"}
    page = _page(browser, _add(session, ruleset, seeded, answers))
    (flag,) = texts(page, "flag-exclude")
    assert _title(ruleset, "psychosis_or_mania_recent") in flag
    assert "Patient answered: Yes, in the past 12 months" in flag
    assert "yes_within_12_months" not in page


def test_the_page_uses_the_stored_pack_wording_not_todays(
    session: Session, browser: TestClient, seeded: Seeded, ruleset: Ruleset
) -> None:
    document = copy.deepcopy(ruleset.document)
    _retext(document, "heart_attack", "A heart attack (as worded then)")
    older = ruleset_from_document(document)
    assert older.sha256 != ruleset.sha256
    answers = CANDIDATE_ANSWERS | {
        "heart_brain_history": ["heart_attack"],
        "heart_brain_recent": ["none"],
    }
    page = _page(browser, _add(session, older, seeded, answers))
    assert "A heart attack (as worded then) Fired:" in " ".join(texts(page, "ticked"))


def test_a_v1_screening_still_reads_in_v1(
    session: Session, browser: TestClient, seeded: Seeded
) -> None:
    v1 = load_ruleset(V1_PACK)
    page = _page(
        browser, _add(session, v1, seeded, V1_CANDIDATE_ANSWERS | {"heart_failure": "yes"})
    )
    assert "Patient answered: Yes" in texts(page, "flag-exclude")[0]
    assert "Has a doctor ever told you that you had any of these?" not in page


def test_option_and_rule_text_are_escaped(
    session: Session, browser: TestClient, seeded: Seeded, ruleset: Ruleset
) -> None:
    document = copy.deepcopy(ruleset.document)
    _retext(document, "heart_attack", '<script>alert("x")</script> & <b>heart</b>')
    _retext(document, "stroke", "<img src=x onerror=alert(1)>")
    for rule in document["rules"]:
        if rule["id"] == "coronary_or_cerebrovascular_disease":
            rule["title"] = "<i>Coronary</i>"
    hostile = ruleset_from_document(document)
    answers = CANDIDATE_ANSWERS | {
        "heart_brain_history": ["heart_attack", "unsure"],
        "heart_brain_recent": ["none"],
    }
    page = _page(browser, _add(session, hostile, seeded, answers))
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<i>Coronary" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;heart&lt;/b&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # in the not-ruled-out list
    ticked = unescape(" ".join(texts(page, "ticked")))
    assert '<script>alert("x")</script> & <b>heart</b> Fired: <i>Coronary</i>' in ticked


def _retext(document: dict[str, Any], value: str, text: str) -> None:
    """Reword option ``value`` of every checklist of a pack document."""
    for group in document["questionnaire"]["groups"]:
        for item in group["items"]:
            for option in item.get("options", []):
                if option["value"] == value and item["type"] == "multi_choice":
                    option["text"] = text
    assert re.search(re.escape(text), str(document))
