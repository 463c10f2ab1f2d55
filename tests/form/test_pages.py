"""Pages, enablement, pruning and what comes next (pure, using the real rule pack)."""

from collections.abc import Mapping
from datetime import date

import pytest

from app.engine import Ruleset
from app.form.fields import Parsed
from app.form.pages import (
    Draft,
    apply_page,
    build_pages,
    first_unfinished,
    next_page,
    prune,
    shown_items,
)
from tests.form.support import FEMALE_ANSWERS

AS_OF = date(2026, 6, 15)


def test_groups_split_where_a_question_depends_on_one_on_the_same_page(ruleset: Ruleset) -> None:
    pages = {page.id: [item.id for item in page.items] for page in build_pages(ruleset)}
    assert pages["blood_pressure"] == ["hypertension"]
    assert pages["blood_pressure-2"] == ["bp_controlled", "systolic_bp", "diastolic_bp"]
    assert pages["pregnancy"] == ["pregnant", "breastfeeding"]
    assert pages["ketamine-2"] == ["ketamine_reaction", "ketamine_allergy"]
    # A follow-up gated by a checklist gets its own page too (contains_any reads the same page).
    assert pages["heart"] == ["heart_failure", "heart_brain_history"]
    assert pages["heart-2"] == ["heart_brain_recent"]
    assert pages["other_health-2"] == ["thyroid_controlled"]


def test_changing_sex_at_birth_prunes_pregnancy_answers(ruleset: Ruleset) -> None:
    draft = Draft(dict(FEMALE_ANSWERS), set(FEMALE_ANSWERS), set())
    pruned, state = prune(
        ruleset, Draft(draft.answers | {"sex_at_birth": "male"}, draft.seen), as_of=AS_OF
    )
    assert "pregnant" not in pruned.answers
    assert "pregnant" not in pruned.seen
    pages = build_pages(ruleset)
    about, condition = pages[0], pages[1]
    assert next_page(pages, condition, state) == pages[3]  # blood pressure, not pregnancy
    assert next_page(pages, about, state) == condition


def test_a_newly_enabled_question_is_unfinished(ruleset: Ruleset) -> None:
    answers = FEMALE_ANSWERS | {"ketamine_before": "yes"}
    draft, state = prune(ruleset, Draft(answers, set(FEMALE_ANSWERS), set()), as_of=AS_OF)
    unfinished = first_unfinished(build_pages(ruleset), draft, state)
    assert unfinished is not None
    assert unfinished.id == "ketamine-2"


def test_a_date_of_birth_after_the_concussion_date_is_an_error_on_the_page(
    ruleset: Ruleset,
) -> None:
    answers = FEMALE_ANSWERS | {"concussion": "yes", "concussion_date": "2000-01-01"}
    draft = Draft(answers, set(answers), set())
    about = build_pages(ruleset)[0]
    parsed = Parsed(values={"date_of_birth": "2001-01-01", "sex_at_birth": "female"})
    kept, errors = apply_page(ruleset, draft, about.items, parsed, as_of=AS_OF)
    assert kept is draft
    assert [(e.item, e.key) for e in errors] == [("date_of_birth", "error.birth_after_other")]


def _applies(ruleset: Ruleset, answers: Mapping[str, object], page_id: str) -> bool:
    _, state = prune(ruleset, Draft(dict(answers), set(answers), set()), as_of=AS_OF)
    page = next(page for page in build_pages(ruleset) if page.id == page_id)
    return bool(shown_items(page, state))


@pytest.mark.parametrize(
    ("history", "applies"),
    [
        (["stroke"], True),
        (["tia"], True),
        (["heart_attack", "unsure"], True),
        (["coronary_disease"], True),
        (["unsure"], True),  # unknown gate: the follow-up stays (policy v2 section 1.2)
        (["aneurysm", "unsure"], True),
        (["aneurysm", "irregular_heartbeat"], False),
        (["none"], False),
        (None, True),  # not answered yet: unknown
    ],
)
def test_recent_events_are_asked_only_when_the_history_enables_them(
    ruleset: Ruleset, history: list[str] | None, applies: bool
) -> None:
    answers = {} if history is None else {"heart_brain_history": history}
    assert _applies(ruleset, answers, "heart-2") is applies


@pytest.mark.parametrize(
    ("conditions", "applies"),
    [(["overactive_thyroid"], True), (["unsure"], True), (["glaucoma"], False), (["none"], False)],
)
def test_thyroid_control_is_asked_only_when_the_checklist_enables_it(
    ruleset: Ruleset, conditions: list[str], applies: bool
) -> None:
    assert _applies(ruleset, {"other_medical_conditions": conditions}, "other_health-2") is applies


def test_a_checklist_changed_to_none_drops_its_follow_up(ruleset: Ruleset) -> None:
    answers = FEMALE_ANSWERS | {
        "heart_brain_history": ["stroke"],
        "heart_brain_recent": ["stroke_or_tia"],
        "other_medical_conditions": ["unsure"],
        "thyroid_controlled": "unsure",
    }
    draft = Draft(answers, set(answers), set())
    heart = next(page for page in build_pages(ruleset) if page.id == "heart")
    parsed = Parsed(values={"heart_failure": "no", "heart_brain_history": ["none"]})
    kept, errors = apply_page(ruleset, draft, heart.items, parsed, as_of=AS_OF)
    assert errors == []
    assert "heart_brain_recent" not in kept.answers
    assert "heart_brain_recent" not in kept.seen
    assert kept.answers["thyroid_controlled"] == "unsure"  # its gate is still unknown
