"""Answer validation (DESIGN.md "Items"): strict types, ranges, dates, choices, enable_when."""

import functools
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.engine import AnswerErrors, Answers, Ruleset, evaluate, load_ruleset, validate_answers
from app.engine.conditions import DISABLED, MISSING, UNSURE

PACK_DIR = Path(__file__).resolve().parents[2] / "rules" / "ketamine-infusion-v1"
AS_OF = date(2026, 6, 15)


@functools.cache
def default_pack() -> Ruleset:
    return load_ruleset(PACK_DIR)


def validate(raw: object, as_of: date = AS_OF) -> Answers:
    return validate_answers(default_pack(), raw, as_of=as_of)


def rejections(raw: object, as_of: date = AS_OF) -> list[tuple[str, str]]:
    """The (code, item) of every error, in the order reported."""
    with pytest.raises(AnswerErrors) as caught:
        validate(raw, as_of)
    return [(error.code, error.item) for error in caught.value.errors]


def messages(raw: object) -> list[str]:
    with pytest.raises(AnswerErrors) as caught:
        validate(raw)
    return [error.message for error in caught.value.errors] + [str(caught.value)]


class TestUnknownItem:
    def test_unknown_item_is_rejected(self) -> None:
        assert rejections({"systolic": 120}) == [("unknown_item", "systolic")]

    def test_unknown_item_is_rejected_even_when_null(self) -> None:
        assert rejections({"weight_kg": None}) == [("unknown_item", "weight_kg")]

    def test_item_ids_are_case_sensitive(self) -> None:
        assert rejections({"Heart_Failure": "no"}) == [("unknown_item", "Heart_Failure")]


class TestWrongType:
    @pytest.mark.parametrize(
        "value",
        ["150", 150.5, 150.0, True, False, [150], {"value": 150}],
        ids=["string", "fraction", "float", "true", "false", "list", "object"],
    )
    def test_integer_item_rejects_non_integers(self, value: object) -> None:
        assert rejections({"systolic_bp": value}) == [("wrong_type", "systolic_bp")]

    @pytest.mark.parametrize("value", [True, False, 1, 0, ["yes"]])
    def test_yes_no_unsure_item_rejects_non_strings(self, value: object) -> None:
        assert rejections({"heart_failure": value}) == [("wrong_type", "heart_failure")]

    @pytest.mark.parametrize("value", [True, False, 1])
    def test_yes_no_item_rejects_booleans(self, value: object) -> None:
        raw = {"sex_at_birth": "female", "breastfeeding": value}
        assert rejections(raw) == [("wrong_type", "breastfeeding")]

    @pytest.mark.parametrize("value", [19900203, ["1990-02-03"], 1990.5])
    def test_date_item_rejects_non_strings(self, value: object) -> None:
        assert rejections({"date_of_birth": value}) == [("wrong_type", "date_of_birth")]

    def test_choice_item_rejects_a_list(self) -> None:
        assert rejections({"sex_at_birth": ["female"]}) == [("wrong_type", "sex_at_birth")]

    @pytest.mark.parametrize("value", ["migraine", ["migraine", 3], {"migraine": True}])
    def test_multi_choice_item_rejects_anything_but_a_list_of_strings(self, value: object) -> None:
        assert rejections({"conditions": value}) == [("wrong_type", "conditions")]


class TestRange:
    @pytest.mark.parametrize(
        ("item", "low", "high"),
        [("systolic_bp", 50, 300), ("diastolic_bp", 30, 200), ("symptom_duration_months", 0, 600)],
    )
    def test_out_of_range_is_rejected_at_both_ends(self, item: str, low: int, high: int) -> None:
        assert rejections({item: low - 1}) == [("out_of_range", item)]
        assert rejections({item: high + 1}) == [("out_of_range", item)]

    @pytest.mark.parametrize(
        ("item", "low", "high"),
        [("systolic_bp", 50, 300), ("diastolic_bp", 30, 200), ("symptom_duration_months", 0, 600)],
    )
    def test_range_limits_and_just_inside_are_accepted(
        self, item: str, low: int, high: int
    ) -> None:
        for value in (low, low + 1, high - 1, high):
            assert validate({item: value}).values == {item: value}

    def test_huge_integer_is_out_of_range_not_an_error(self) -> None:
        assert rejections({"systolic_bp": 10**30}) == [("out_of_range", "systolic_bp")]

    def test_negative_duration_is_out_of_range(self) -> None:
        assert rejections({"symptom_duration_months": -5}) == [
            ("out_of_range", "symptom_duration_months")
        ]


class TestDates:
    def test_future_date_of_birth_is_rejected(self) -> None:
        assert rejections({"date_of_birth": "2026-06-16"}) == [("future_date", "date_of_birth")]

    def test_future_concussion_date_is_rejected(self) -> None:
        raw = {"concussion": "yes", "concussion_date": "2026-06-16"}
        assert rejections(raw) == [("future_date", "concussion_date")]

    def test_date_equal_to_as_of_is_accepted(self) -> None:
        raw = {"date_of_birth": "2026-06-15", "concussion": "yes", "concussion_date": "2026-06-15"}
        assert validate(raw).values == raw

    def test_future_is_relative_to_as_of_not_today(self) -> None:
        raw = {"date_of_birth": "2000-01-01"}
        assert rejections(raw, as_of=date(1999, 12, 31)) == [("future_date", "date_of_birth")]
        assert validate(raw, as_of=date(2000, 1, 1)).values == raw

    @pytest.mark.parametrize(
        "value",
        [
            "1990-02-30",
            "1900-02-29",
            "2023-02-29",
            "1990-13-01",
            "1990-00-10",
            "1990-04-31",
            "1990-2-3",
            "19900203",
            "1990/02/03",
            "03-02-1990",
            "1990-02-03T00:00",
            "1990-02-03 ",
            " 1990-02-03",
            "1990-02-03\n",
            "",
            "yesterday",
            "1990-W05-6",
            "\u0661\u0669\u0669\u0660-\u0660\u0662-\u0660\u0663",
        ],
    )
    def test_not_a_calendar_date_is_rejected(self, value: str) -> None:
        assert rejections({"date_of_birth": value}) == [("invalid_date", "date_of_birth")]

    @pytest.mark.parametrize("value", ["2000-02-29", "2024-02-29", "1900-03-01", "1850-01-01"])
    def test_real_calendar_dates_are_accepted(self, value: str) -> None:
        assert validate({"date_of_birth": value}).state["date_of_birth"] == date.fromisoformat(
            value
        )

    def test_concussion_before_birth_is_inconsistent(self) -> None:
        raw = {"date_of_birth": "1990-05-01", "concussion": "yes", "concussion_date": "1990-04-30"}
        assert rejections(raw) == [("inconsistent_dates", "concussion_date")]

    def test_concussion_on_the_day_of_birth_is_accepted(self) -> None:
        raw = {"date_of_birth": "1990-05-01", "concussion": "yes", "concussion_date": "1990-05-01"}
        assert validate(raw).values == raw

    def test_concussion_date_without_date_of_birth_is_accepted(self) -> None:
        raw = {"concussion": "yes", "concussion_date": "1950-01-01"}
        assert validate(raw).values == raw

    def test_date_order_is_not_checked_against_an_invalid_date_of_birth(self) -> None:
        raw = {"date_of_birth": "1990-02-30", "concussion": "yes", "concussion_date": "1980-01-01"}
        assert rejections(raw) == [("invalid_date", "date_of_birth")]


class TestChoices:
    @pytest.mark.parametrize("value", ["other", "Female", "FEMALE", "f", "", "unsure"])
    def test_choice_not_listed_is_rejected(self, value: str) -> None:
        assert rejections({"sex_at_birth": value}) == [("bad_choice", "sex_at_birth")]

    def test_multi_choice_with_an_option_not_listed_is_rejected(self) -> None:
        assert rejections({"conditions": ["migraine", "back_pain"]}) == [
            ("bad_choice", "conditions")
        ]

    def test_multi_choice_with_a_repeated_option_is_rejected(self) -> None:
        assert rejections({"conditions": ["migraine", "migraine"]}) == [
            ("bad_choice", "conditions")
        ]

    def test_empty_conditions_is_rejected(self) -> None:
        assert rejections({"conditions": []}) == [("empty_selection", "conditions")]

    def test_every_listed_condition_is_accepted(self) -> None:
        every = [
            "migraine",
            "chronic_pain",
            "fibromyalgia",
            "nerve_pain",
            "cancer_pain",
            "depression",
            "other",
        ]
        assert validate({"conditions": every}).state["conditions"] == frozenset(every)

    @pytest.mark.parametrize("value", ["Yes", "YES", "y", "true", "maybe", "", "no "])
    def test_yes_no_unsure_item_rejects_other_strings(self, value: str) -> None:
        assert rejections({"heart_failure": value}) == [("bad_choice", "heart_failure")]

    def test_unsure_is_not_allowed_for_breastfeeding(self) -> None:
        raw = {"sex_at_birth": "female", "breastfeeding": "unsure"}
        assert rejections(raw) == [("bad_choice", "breastfeeding")]

    @pytest.mark.parametrize("value", ["yes", "no", "unsure"])
    def test_yes_no_unsure_item_accepts_its_three_values(self, value: str) -> None:
        answers = validate({"heart_failure": value})
        assert answers.values == {"heart_failure": value}
        assert answers.state["heart_failure"] == (UNSURE if value == "unsure" else value)

    @pytest.mark.parametrize("value", ["yes", "no"])
    def test_yes_no_item_accepts_yes_and_no(self, value: str) -> None:
        raw = {"sex_at_birth": "female", "breastfeeding": value}
        assert validate(raw).values == raw


class TestDisabledItems:
    @pytest.mark.parametrize(
        ("raw", "item"),
        [
            ({"sex_at_birth": "male", "pregnant": "no"}, "pregnant"),
            ({"sex_at_birth": "male", "pregnant": "yes"}, "pregnant"),
            ({"sex_at_birth": "male", "breastfeeding": "no"}, "breastfeeding"),
            ({"hypertension": "no", "bp_controlled": "yes"}, "bp_controlled"),
            ({"concussion": "no", "concussion_date": "2020-01-01"}, "concussion_date"),
            ({"ketamine_before": "no", "ketamine_reaction": "no"}, "ketamine_reaction"),
        ],
        ids=[
            "pregnant no, male",
            "pregnant yes, male",
            "breastfeeding, male",
            "bp_controlled, no hypertension",
            "concussion_date, no concussion",
            "ketamine_reaction, never had ketamine",
        ],
    )
    def test_answer_to_a_disabled_item_is_rejected(self, raw: dict[str, Any], item: str) -> None:
        assert rejections(raw) == [("item_disabled", item)]

    def test_both_pregnancy_answers_are_rejected_for_male(self) -> None:
        raw = {"sex_at_birth": "male", "pregnant": "no", "breastfeeding": "no"}
        assert sorted(rejections(raw)) == [
            ("item_disabled", "breastfeeding"),
            ("item_disabled", "pregnant"),
        ]

    def test_disabled_message_names_the_controlling_item(self) -> None:
        with pytest.raises(AnswerErrors) as caught:
            validate({"hypertension": "no", "bp_controlled": "yes"})
        assert "hypertension" in caught.value.errors[0].message

    def test_applies_is_false_only_for_disabled_items(self) -> None:
        answers = validate({"sex_at_birth": "male", "hypertension": "unsure"})
        assert answers.applies("pregnant") is False
        assert answers.applies("breastfeeding") is False
        assert answers.applies("bp_controlled") is True  # unknown enable_when: still applies
        assert answers.applies("concussion_date") is True  # concussion unanswered
        assert answers.applies("sex_at_birth") is True

    def test_null_answer_to_a_disabled_item_is_accepted(self) -> None:
        answers = validate({"sex_at_birth": "male", "pregnant": None, "breastfeeding": None})
        assert answers.values == {"sex_at_birth": "male"}
        assert answers.state["pregnant"] is DISABLED
        assert answers.state["breastfeeding"] is DISABLED

    @pytest.mark.parametrize(
        ("raw", "item"),
        [
            ({"hypertension": "unsure", "bp_controlled": "no"}, "bp_controlled"),
            ({"pregnant": "yes", "breastfeeding": "no"}, "pregnant"),
            ({"sex_at_birth": None, "pregnant": "no"}, "pregnant"),
            ({"concussion": "unsure", "concussion_date": "2026-06-01"}, "concussion_date"),
            ({"concussion_date": "2026-06-01"}, "concussion_date"),
            ({"ketamine_before": "unsure", "ketamine_reaction": "yes"}, "ketamine_reaction"),
        ],
        ids=[
            "hypertension unsure",
            "sex at birth missing",
            "sex at birth null",
            "concussion unsure",
            "concussion missing",
            "ketamine_before unsure",
        ],
    )
    def test_unknown_enable_when_leaves_the_item_enabled(
        self, raw: dict[str, Any], item: str
    ) -> None:
        answers = validate(raw)
        assert answers.values == {k: v for k, v in raw.items() if v is not None}
        assert answers.state[item] not in (DISABLED, MISSING)

    def test_enabled_by_yes_accepts_the_dependent_answer(self) -> None:
        raw = {
            "hypertension": "yes",
            "bp_controlled": "no",
            "sex_at_birth": "intersex",
            "pregnant": "no",
            "ketamine_before": "yes",
            "ketamine_reaction": "unsure",
        }
        assert validate(raw).values == raw

    def test_invalid_controlling_answer_leaves_the_dependent_enabled(self) -> None:
        # Only the real mistake is reported, not a knock-on "disabled" error.
        raw = {"hypertension": "maybe", "bp_controlled": "no"}
        assert rejections(raw) == [("bad_choice", "hypertension")]

    def test_dependent_items_are_disabled_when_not_applicable(self) -> None:
        state = validate(
            {
                "sex_at_birth": "male",
                "hypertension": "no",
                "concussion": "no",
                "ketamine_before": "no",
            }
        ).state
        disabled = {item for item, value in state.items() if value is DISABLED}
        assert disabled == {
            "pregnant",
            "breastfeeding",
            "bp_controlled",
            "concussion_date",
            "ketamine_reaction",
        }


class TestUnanswered:
    def test_null_means_unanswered(self) -> None:
        answers = validate({"systolic_bp": None, "heart_failure": None, "conditions": None})
        assert answers.values == {}
        assert answers.state["systolic_bp"] is MISSING
        assert answers.state["heart_failure"] is MISSING

    def test_null_evaluates_exactly_like_absent(self) -> None:
        ruleset = default_pack()
        nulls = dict.fromkeys(ruleset.items)
        with_nulls = evaluate(ruleset, validate(nulls), as_of=AS_OF)
        empty = evaluate(ruleset, validate({}), as_of=AS_OF)
        assert with_nulls.to_dict() == empty.to_dict()

    def test_empty_answers_are_valid_and_every_item_is_missing(self) -> None:
        answers = validate({})
        assert answers.values == {}
        assert set(answers.state) == set(default_pack().items)
        assert all(value is MISSING for value in answers.state.values())

    def test_values_keep_the_submitted_json_answers(self) -> None:
        raw = {
            "date_of_birth": "1980-01-31",
            "conditions": ["depression", "migraine"],
            "systolic_bp": 128,
            "prior_treatments_tried": "unsure",
        }
        answers = validate(raw)
        assert answers.values == raw
        assert answers.state["date_of_birth"] == date(1980, 1, 31)
        assert answers.state["conditions"] == frozenset({"depression", "migraine"})
        assert answers.state["prior_treatments_tried"] is UNSURE


class TestNotAnObject:
    @pytest.mark.parametrize("raw", [[], ["heart_failure"], "yes", 3, None])
    def test_answers_that_are_not_an_object_are_rejected(self, raw: object) -> None:
        assert rejections(raw) == [("not_an_object", "")]


class TestAllErrorsAtOnce:
    def test_every_error_is_reported_together(self) -> None:
        raw = {
            "systolic": 120,
            "systolic_bp": "150",
            "diastolic_bp": 201,
            "date_of_birth": "1990-02-30",
            "sex_at_birth": "male",
            "pregnant": "no",
            "conditions": [],
            "hypertension": True,
            "concussion": "yes",
            "concussion_date": "2027-01-01",
            "heart_failure": "perhaps",
        }
        assert sorted(rejections(raw)) == sorted(
            [
                ("unknown_item", "systolic"),
                ("wrong_type", "systolic_bp"),
                ("out_of_range", "diastolic_bp"),
                ("invalid_date", "date_of_birth"),
                ("item_disabled", "pregnant"),
                ("empty_selection", "conditions"),
                ("wrong_type", "hypertension"),
                ("future_date", "concussion_date"),
                ("bad_choice", "heart_failure"),
            ]
        )

    def test_inconsistent_dates_are_reported_with_other_errors(self) -> None:
        raw = {
            "date_of_birth": "1990-05-01",
            "concussion": "yes",
            "concussion_date": "1980-01-01",
            "schizophrenia": 1,
        }
        assert sorted(rejections(raw)) == [
            ("inconsistent_dates", "concussion_date"),
            ("wrong_type", "schizophrenia"),
        ]

    def test_error_serialises_to_code_item_message(self) -> None:
        with pytest.raises(AnswerErrors) as caught:
            validate({"systolic_bp": 20})
        assert caught.value.errors[0].to_dict() == {
            "code": "out_of_range",
            "item": "systolic_bp",
            "message": "systolic_bp must be from 50 to 300 mmHg",
        }

    def test_not_an_object_message_uses_a_placeholder_item(self) -> None:
        with pytest.raises(AnswerErrors) as caught:
            validate([1])
        assert str(caught.value).startswith("(answers): ")


class TestMessagesNeverEchoValues:
    @pytest.mark.parametrize(
        ("raw", "secret"),
        [
            ({"systolic_bp": 29871}, "29871"),
            ({"systolic_bp": "29872"}, "29872"),
            ({"systolic_bp": 123.456}, "123.456"),
            ({"date_of_birth": "1987-02-31"}, "1987-02-31"),
            ({"date_of_birth": "2099-07-23"}, "2099-07-23"),
            ({"date_of_birth": "Mrs Jane Q. Patient"}, "Jane"),
            ({"sex_at_birth": "zebra-secret-7731"}, "zebra"),
            ({"conditions": ["migraine", "secret-cond-42"]}, "secret-cond-42"),
            ({"heart_failure": "my-secret-answer"}, "my-secret"),
            ({"mystery_item": "secret-value-8812"}, "secret-value-8812"),
            ({"sex_at_birth": "male", "pregnant": "secret-preg-55"}, "secret-preg-55"),
            (
                {
                    "date_of_birth": "1991-03-14",
                    "concussion": "yes",
                    "concussion_date": "1975-11-09",
                },
                "1975-11-09",
            ),
            (
                {
                    "date_of_birth": "1991-03-14",
                    "concussion": "yes",
                    "concussion_date": "1975-11-09",
                },
                "1991-03-14",
            ),
        ],
    )
    def test_messages_do_not_contain_the_submitted_value(
        self, raw: dict[str, Any], secret: str
    ) -> None:
        for message in messages(raw):
            assert secret not in message

    def test_every_message_names_its_item(self) -> None:
        raw = {"systolic_bp": 1, "date_of_birth": "x", "sex_at_birth": 3, "conditions": []}
        with pytest.raises(AnswerErrors) as caught:
            validate(raw)
        for error in caught.value.errors:
            assert error.message.startswith(error.item), error
