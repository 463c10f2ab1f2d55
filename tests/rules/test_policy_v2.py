"""The worked examples and validation rules of POLICY-V2.md, run against rules/ketamine-infusion.

Section 4 of the contract lists worked examples as "answers (v2 part; v1 part clean)" with the
decision, fired rules and unknown rules. Each is a test here: the v1 part is a complete v1
answer set that gives `candidate` on its own, and the v2 items the example does not name are
answered with their clean values. Section 1.2 lists the checklist answers that are rejected
(a 422 at the API: nothing is evaluated) and two that are valid; section 1.4 says how `null`
and contradictions are handled.
"""

from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from app.engine import AnswerErrors, Outcome, Ruleset, evaluate, load_ruleset, validate_answers
from tests.factories import CANDIDATE_ANSWERS, V1_CANDIDATE_ANSWERS

RULES_ROOT = Path(__file__).resolve().parents[2] / "rules"
V2 = load_ruleset(RULES_ROOT / "ketamine-infusion")
V1 = load_ruleset(RULES_ROOT / "ketamine-infusion-v1")
AS_OF = date(2026, 6, 15)

V1_CLEAN = V1_CANDIDATE_ANSWERS  # a complete v1 answer set that is a candidate by itself
V2_CLEAN = {k: v for k, v in CANDIDATE_ANSWERS.items() if k not in V1_CANDIDATE_ANSWERS}
V2_RULES = frozenset(
    {
        "ketamine_hypersensitivity",
        "psychosis_or_mania_recent",
        "psychosis_or_mania_history",
        "substance_use_recent",
        "substance_use_history",
        "aneurysm_avm_or_brain_bleed",
        "previous_stroke",
        "recent_cardiac_or_cerebrovascular_event",
        "coronary_or_cerebrovascular_disease",
        "arrhythmia",
        "seizure_disorder",
        "serious_liver_disease",
        "glaucoma_or_raised_eye_pressure",
        "uncontrolled_hyperthyroidism",
    }
)


class Example(NamedTuple):
    """One row of POLICY-V2 section 4: the answers and what the contract says they give."""

    name: str
    answers: dict[str, Any]
    decision: Outcome
    fired: frozenset[str]
    unknown: frozenset[str]


def _v2(**part: Any) -> dict[str, Any]:
    return V1_CLEAN | V2_CLEAN | part


EXAMPLES = [
    Example(
        "allergy reported after ketamine without another bad reaction",
        _v2(ketamine_before="yes", ketamine_reaction="no", ketamine_allergy="yes"),
        Outcome.not_candidate,
        frozenset({"ketamine_hypersensitivity"}),
        frozenset(),
    ),
    Example(
        # v1's prior_ketamine_reaction is all(unknown, false) = false; v2 reads the follow-up.
        "allergy reported while unsure about ever having ketamine",
        _v2(ketamine_before="unsure", ketamine_reaction="no", ketamine_allergy="yes"),
        Outcome.not_candidate,
        frozenset({"ketamine_hypersensitivity"}),
        frozenset(),
    ),
    Example(
        "heart and brain history unsure, nothing recent",
        _v2(heart_brain_history=["unsure"], heart_brain_recent=["none"]),
        Outcome.needs_review,
        frozenset(),
        frozenset(
            {
                "aneurysm_avm_or_brain_bleed",
                "arrhythmia",
                "coronary_or_cerebrovascular_disease",
                "previous_stroke",
            }
        ),
    ),
    Example(
        "past heart attack and a recent one, unsure about the rest",
        _v2(heart_brain_history=["heart_attack"], heart_brain_recent=["heart_attack", "unsure"]),
        Outcome.not_candidate,
        frozenset(
            {"coronary_or_cerebrovascular_disease", "recent_cardiac_or_cerebrovascular_event"}
        ),
        frozenset(),
    ),
    Example(
        "glaucoma and unsure about the other conditions (thyroid question left open)",
        _v2(other_medical_conditions=["glaucoma", "unsure"]),
        Outcome.needs_review,
        frozenset({"glaucoma_or_raised_eye_pressure"}),
        frozenset({"seizure_disorder", "serious_liver_disease", "uncontrolled_hyperthyroidism"}),
    ),
    Example(
        "unsure about psychosis or mania",
        _v2(psychosis_or_mania="unsure"),
        Outcome.needs_review,
        frozenset(),
        frozenset({"psychosis_or_mania_history", "psychosis_or_mania_recent"}),
    ),
    Example(
        # ketamine_before = no disables ketamine_allergy, so that rule alone is clear.
        "a complete v1 answer set with no v2 answers",
        dict(V1_CLEAN),
        Outcome.needs_review,
        frozenset(),
        V2_RULES - {"ketamine_hypersensitivity"},
    ),
]


def _decide(ruleset: Ruleset, answers: dict[str, Any]) -> tuple[Outcome, set[str], set[str]]:
    decision = evaluate(ruleset, validate_answers(ruleset, answers, as_of=AS_OF), as_of=AS_OF)
    fired = {rule for rule, status in decision.statuses.items() if status.value == "fired"}
    unknown = {rule for rule, status in decision.statuses.items() if status.value == "unknown"}
    return decision.outcome, fired, unknown


def test_the_v2_pack_has_the_25_rules_of_the_contract() -> None:
    assert len(V2.rules) == 25
    assert {rule.id for rule in V1.rules} | V2_RULES == {rule.id for rule in V2.rules}


def test_the_clean_answer_sets_give_candidate() -> None:
    assert _decide(V1, V1_CLEAN) == (Outcome.candidate, set(), set())
    assert _decide(V2, V1_CLEAN | V2_CLEAN) == (Outcome.candidate, set(), set())


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_worked_example(example: Example) -> None:
    outcome, fired, unknown = _decide(V2, example.answers)
    assert (outcome, fired, unknown) == (example.decision, set(example.fired), set(example.unknown))


def _errors(answers: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(AnswerErrors) as raised:
        validate_answers(V2, V1_CLEAN | V2_CLEAN | answers, as_of=AS_OF)
    return [(error.code, error.item, error.message) for error in raised.value.errors]


def test_worked_example_none_with_a_condition_is_rejected() -> None:
    ((code, item, message),) = _errors({"heart_brain_history": ["none", "aneurysm"]})
    assert (code, item) == ("none_not_alone", "heart_brain_history")
    assert '"none" cannot be combined with other choices' in message


@pytest.mark.parametrize(
    ("answers", "code", "item"),
    [
        ({"heart_brain_history": "aneurysm"}, "wrong_type", "heart_brain_history"),
        ({"heart_brain_history": []}, "empty_selection", "heart_brain_history"),
        ({"heart_brain_history": ["None"]}, "bad_choice", "heart_brain_history"),
        (
            {"heart_brain_history": ["tia"], "heart_brain_recent": ["tia"]},
            "bad_choice",
            "heart_brain_recent",
        ),
        ({"heart_brain_history": ["stroke", "stroke"]}, "duplicate_choice", "heart_brain_history"),
        ({"heart_brain_history": ["none", "unsure"]}, "none_not_alone", "heart_brain_history"),
        (
            {"other_medical_conditions": ["glaucoma", "none"]},
            "none_not_alone",
            "other_medical_conditions",
        ),
        ({"psychosis_or_mania": "maybe"}, "bad_choice", "psychosis_or_mania"),
        (
            {"heart_brain_history": ["none"], "heart_brain_recent": ["none"]},
            "item_disabled",
            "heart_brain_recent",
        ),
    ],
    ids=[
        "a string instead of a list",
        "an empty list",
        "wrong case of none",
        "an option of another checklist",
        "a duplicate",
        "none with unsure",
        "none after a condition",
        "an unlisted choice",
        "an answer to a disabled follow-up",
    ],
)
def test_checklist_answer_is_rejected(answers: dict[str, Any], code: str, item: str) -> None:
    assert [(error_code, error_item) for error_code, error_item, _ in _errors(answers)] == [
        (code, item)
    ]


def test_empty_checklist_message_names_none() -> None:
    ((_, _, message),) = _errors({"other_medical_conditions": []})
    assert 'select at least one choice, or "none"' in message


@pytest.mark.parametrize(
    "history",
    [["unsure"], ["heart_attack", "unsure"]],
    ids=["unsure alone", "a condition with unsure"],
)
def test_unsure_is_a_valid_checklist_answer(history: list[str]) -> None:
    outcome, _, unknown = _decide(V2, _v2(heart_brain_history=history))
    assert outcome in (Outcome.needs_review, Outcome.not_candidate)
    # The follow-up is enabled (unsure or a trigger) and unanswered.
    assert "recent_cardiac_or_cerebrovascular_event" in unknown


def test_null_is_not_answered_and_allowed_on_a_disabled_item() -> None:
    # Contract 1.4: null on an enabled v2 item is a missing answer...
    _, _, unknown = _decide(V2, _v2(psychosis_or_mania=None))
    assert unknown == {"psychosis_or_mania_recent", "psychosis_or_mania_history"}
    # ...and on a disabled follow-up it is not an answer, so it is not rejected.
    assert _decide(V2, _v2(heart_brain_recent=None, thyroid_controlled=None)) == (
        Outcome.candidate,
        set(),
        set(),
    )


def test_contradictory_answers_are_accepted_and_rules_fire_on_what_is_reported() -> None:
    outcome, fired, _ = _decide(
        V2, _v2(other_medical_conditions=["unsure"], thyroid_controlled="no")
    )
    assert outcome is Outcome.not_candidate
    assert fired == {"uncontrolled_hyperthyroidism"}
