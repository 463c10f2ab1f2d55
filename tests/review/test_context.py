"""Clinical context in words (issue 17): ages, relative dates, one reading, titles not ids."""

from datetime import date

import pytest

from app.engine import Ruleset, validate_answers
from app.review import context
from tests.factories import CANDIDATE_ANSWERS

AS_OF = date(2026, 12, 2)


def test_age_line_counts_whole_years_on_the_as_of_date() -> None:
    assert context.age_line("1984-03-27", AS_OF) == "42 years (born 27 Mar 1984)"
    assert context.age_line("1984-12-03", AS_OF) == "41 years (born 3 Dec 1984)"
    assert context.age_line(None, AS_OF) == "Not given"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-02", "2 Nov 2026, 30 days before screening"),
        ("2026-12-01", "1 Dec 2026, 1 day before screening"),
        ("2026-12-02", "2 Dec 2026, the day of screening"),
        ("2020-05-01", "1 May 2020, 6 years before screening"),
    ],
)
def test_relative_date_is_counted_from_the_screening(value: str, expected: str) -> None:
    assert context.relative_date(value, AS_OF) == expected


def test_reading_is_one_value_and_names_a_missing_half(ruleset: Ruleset) -> None:
    ids = context.reading_ids(ruleset)
    assert ids == ("systolic_bp", "diastolic_bp")
    assert context.reading({"systolic_bp": 165, "diastolic_bp": 92}, ids) == "165/92 mmHg"
    assert context.reading({"systolic_bp": 165}, ids) == "165/? mmHg (bottom number not answered)"


def test_rule_ids_in_text_become_titles() -> None:
    titles = {"uncontrolled_blood_pressure": "Uncontrolled blood pressure"}
    text = "Readings of 160/100 are handled by uncontrolled_blood_pressure."
    assert context.titles_for_ids(text, titles) == (
        "Readings of 160/100 are handled by “Uncontrolled blood pressure”."
    )


def test_a_follow_up_to_an_unsure_answer_was_not_asked(ruleset: Ruleset) -> None:
    answers = CANDIDATE_ANSWERS | {"concussion": "unsure"}
    state = validate_answers(ruleset, answers, as_of=AS_OF).state
    assert context.not_asked(ruleset, state, AS_OF) == {"concussion_date": context.NOT_ASKED_UNSURE}
