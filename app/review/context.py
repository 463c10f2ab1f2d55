"""Clinical context in words: ages, dates relative to the screening, readings, never ids.

A physician should not have to work out an age from a date of birth, the days between a
concussion and the screening, or which two flags hold the halves of one blood pressure
reading. Everything here is pure: the detail and queue views call it with stored values and
the screening's as-of date.
"""

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from app.engine import Ruleset
from app.engine.conditions import MISSING, UNSURE, UNSURE_OPTION, leaves_of
from app.engine.logic import UNKNOWN
from app.engine.model import IntegerItem

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DATE_OF_BIRTH = "date_of_birth"
READING_UNIT = "mmHg"  # as the form does: the items in this unit are one reading (top, bottom)
READING_QUESTION = "Most recent blood pressure reading (top/bottom)"
READING_CONFIRMED = "the patient confirmed these numbers when the form asked them to check"
NOT_ASKED_UNSURE = "Not asked: depends on an answer the patient was unsure about"
NOT_ASKED_MISSING = "Not asked: depends on a question that was not answered"


def format_date(day: date) -> str:
    """The one date format of the physician's pages: ``2 Dec 2026``."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def parse_date(value: Any) -> date | None:
    """A stored ``YYYY-MM-DD`` answer as a date (None for anything else)."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def age_on(born: date, day: date) -> int:
    """Whole years from ``born`` to ``day`` (a person turns N on their Nth birthday)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def age_line(value: Any, as_of: date) -> str:
    """``42 years (born 27 Mar 1984)`` at the screening's as-of date; "Not given" if absent."""
    born = parse_date(value)
    if born is None:
        return "Not given"
    return f"{age_on(born, as_of)} years (born {format_date(born)})"


def relative_date(value: Any, as_of: date) -> str:
    """``2 Nov 2026, 30 days before screening`` (years once it is two years or more back)."""
    day = parse_date(value)
    if day is None:
        return str(value)
    days = (as_of - day).days
    if days == 0:
        when = "the day of screening"
    elif days < 0:
        when = f"{-days} day{'s' if days != -1 else ''} after screening"
    elif days < 730:
        when = f"{days} day{'s' if days != 1 else ''} before screening"
    else:
        when = f"{age_on(day, as_of)} years before screening"
    return f"{format_date(day)}, {when}"


def date_answer(item_id: str, value: Any, as_of: date) -> str:
    """A date answer in words: an age for the date of birth, else relative to the screening."""
    if item_id == DATE_OF_BIRTH:
        return age_line(value, as_of)
    return relative_date(value, as_of)


def reading_ids(pack: Ruleset) -> tuple[str, ...]:
    """The ids of the blood pressure reading's two numbers (top, bottom), if the pack has one."""
    found = tuple(
        item.id
        for item in pack.questionnaire.items
        if isinstance(item, IntegerItem) and item.unit == READING_UNIT
    )
    return found if len(found) == 2 else ()


def reading(answers: Mapping[str, Any], ids: tuple[str, ...]) -> str:
    """The blood pressure reading as one value, ``165/92 mmHg``, saying which half is missing."""
    top, bottom = (answers.get(item) for item in ids)
    if top is None and bottom is None:
        return "Not answered"
    text = f"{_number(top)}/{_number(bottom)} mmHg"
    if top is None or bottom is None:
        text += f" ({'top' if top is None else 'bottom'} number not answered)"
    return text


def _number(value: Any) -> str:
    return "?" if value is None else str(value)


def not_asked(pack: Ruleset, state: Mapping[str, object], as_of: date) -> dict[str, str]:
    """Item id → why the form never showed it: its enable-when is unknown, not false.

    Such an item is enabled (so unknown, never "no"), but the form only shows a follow-up
    once its trigger is answered; "Not answered" would wrongly suggest the patient skipped it.
    """
    found: dict[str, str] = {}
    for item_id, compiled in pack.items.items():
        if compiled.is_enabled is None or compiled.enable_when is None:
            continue
        if state.get(item_id) is not MISSING or compiled.is_enabled(state, as_of) is not UNKNOWN:
            continue
        controllers = {leaf.item for leaf in leaves_of(compiled.enable_when)}
        is_unsure = any(_is_unsure(state.get(c)) for c in controllers)
        found[item_id] = NOT_ASKED_UNSURE if is_unsure else NOT_ASKED_MISSING
    return found


def _is_unsure(value: object) -> bool:
    return value is UNSURE or (isinstance(value, frozenset) and UNSURE_OPTION in value)


def titles_for_ids(text: str, titles: Mapping[str, str]) -> str:
    """``text`` with every rule id replaced by the rule's title (rationales mention rules)."""
    if not titles:
        return text
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(titles, key=len)[::-1])) + r")\b")
    return pattern.sub(lambda found: f"“{titles[found.group(1)]}”", text)
