"""Lenient parsing of submitted form fields (pure)."""

import pytest

from app.engine import Ruleset
from app.form.fields import (
    READING_UNKNOWN,
    exclusive_option,
    parse_month,
    parse_page,
    unsure_option,
)


@pytest.mark.parametrize(
    ("text", "month"),
    [("3", 3), ("03", 3), ("12", 12), ("Mar", 3), ("march", 3), ("MARZO", 3), ("sept.", 9),
     ("setiembre", 9), ("dic", 12), ("agosto", 8), ("Feb", 2)],
)  # fmt: skip
def test_months_are_read_from_digits_and_names(text: str, month: int) -> None:
    assert parse_month(text) == month


@pytest.mark.parametrize("text", ["0", "13", "ma", "ju", "smarch", ""])
def test_ambiguous_or_impossible_months_are_rejected(text: str) -> None:
    assert parse_month(text) is None


def _items(ruleset: Ruleset, *ids: str) -> tuple:  # type: ignore[type-arg]
    return tuple(ruleset.items[item_id].item for item_id in ids)


def test_dates_accept_one_or_two_digits_and_month_names(ruleset: Ruleset) -> None:
    items = _items(ruleset, "date_of_birth")
    form = {"date_of_birth-month": [" marzo "], "date_of_birth-day": ["7"],
            "date_of_birth-year": ["1985"]}  # fmt: skip
    assert parse_page(items, form).values == {"date_of_birth": "1985-03-07"}


@pytest.mark.parametrize(
    ("parts", "key"),
    [(("2", "30", "1990"), "error.date_invalid"), (("2", "3", "90"), "error.date_year"),
     (("", "3", "1990"), "error.date_incomplete"), (("", "", ""), "error.date_missing")],
)  # fmt: skip
def test_bad_dates_get_a_specific_error(
    ruleset: Ruleset, parts: tuple[str, str, str], key: str
) -> None:
    form = {f"date_of_birth-{p}": [v] for p, v in zip(("month", "day", "year"), parts, strict=True)}
    parsed = parse_page(_items(ruleset, "date_of_birth"), form)
    assert [error.key for error in parsed.errors] == [key]
    assert parsed.values == {}


def test_a_whole_reading_in_the_first_box_is_split(ruleset: Ruleset) -> None:
    items = _items(ruleset, "systolic_bp", "diastolic_bp")
    parsed = parse_page(items, {"systolic_bp": ["135 / 85"], "diastolic_bp": [""]})
    assert parsed.values == {"systolic_bp": 135, "diastolic_bp": 85}


def test_numbers_may_carry_their_unit_but_not_letters(ruleset: Ruleset) -> None:
    items = _items(ruleset, "systolic_bp", "diastolic_bp")
    parsed = parse_page(items, {"systolic_bp": ["120 mmHg"], "diastolic_bp": ["eighty"]})
    assert parsed.values == {"systolic_bp": 120}
    assert [(e.item, e.key) for e in parsed.errors] == [("diastolic_bp", "error.not_a_number")]


def test_i_dont_know_my_reading_leaves_both_numbers_unanswered(ruleset: Ruleset) -> None:
    items = _items(ruleset, "systolic_bp", "diastolic_bp")
    parsed = parse_page(items, {READING_UNKNOWN: ["yes"]})
    assert parsed.values == {}
    assert parsed.unknown == {"systolic_bp", "diastolic_bp"}
    assert parsed.errors == []


def test_required_questions_need_an_answer_and_tampered_values_are_refused(
    ruleset: Ruleset,
) -> None:
    items = _items(ruleset, "conditions", "sex_at_birth", "breastfeeding")
    parsed = parse_page(items, {"conditions": ["made_up"], "breastfeeding": ["unsure"]})
    assert parsed.values == {}
    assert [e.key for e in parsed.errors] == [
        "error.choose_some",
        "error.choose_one",
        "error.choose_one",
    ]


@pytest.mark.parametrize(
    ("item_id", "ticked", "values", "key"),
    [
        ("heart_brain_history", ["none"], ["none"], None),
        ("heart_brain_recent", ["unsure"], ["unsure"], None),
        ("heart_brain_history", ["unsure", "heart_attack"], ["heart_attack", "unsure"], None),
        ("other_medical_conditions", ["none", "glaucoma"], None, "error.none_not_alone"),
        ("heart_brain_recent", ["none", "unsure"], None, "error.none_not_alone"),
        ("other_medical_conditions", [], None, "error.choose_some_or_none"),
        ("heart_brain_recent", ["tia"], None, "error.choose_some_or_none"),  # not its option
    ],
)
def test_checklists_take_none_alone_and_never_empty(
    ruleset: Ruleset, item_id: str, ticked: list[str], values: list[str] | None, key: str | None
) -> None:
    parsed = parse_page(_items(ruleset, item_id), {item_id: ticked})
    assert parsed.values.get(item_id) == values
    assert [(e.item, e.key, e.anchor) for e in parsed.errors] == (
        [(item_id, key, item_id)] if key else []
    )
    # What was ticked (of this item's options) is shown ticked again with the error.
    listed = [o.value for o in _items(ruleset, item_id)[0].options]
    assert parsed.raw[item_id] == [one for one in listed if one in ticked]


def test_a_list_without_a_none_option_keeps_its_own_message(ruleset: Ruleset) -> None:
    parsed = parse_page(_items(ruleset, "conditions"), {})
    assert [e.key for e in parsed.errors] == ["error.choose_some"]
    both = parse_page(_items(ruleset, "conditions"), {"conditions": ["other", "migraine"]})
    assert both.values == {"conditions": ["migraine", "other"]}


def test_only_checklists_have_an_exclusive_option_and_unsure_goes_last(ruleset: Ruleset) -> None:
    exclusive = {i: exclusive_option(c.item) for i, c in ruleset.items.items()}
    assert {i for i, value in exclusive.items() if value} == {
        "heart_brain_history", "heart_brain_recent", "other_medical_conditions",
    }  # fmt: skip
    unsure = {i for i, c in ruleset.items.items() if unsure_option(c.item)}
    assert {"psychosis_or_mania", "substance_use", "pregnant", "ketamine_allergy"} <= unsure
    assert not unsure & {"sex_at_birth", "breastfeeding", "conditions", "heart_brain_history"}
