"""Strict validation of a submitted answers object against the questionnaire.

Implements DESIGN.md "Items": strict types with no coercion, ranges, listed choices, real
calendar dates not after the as-of date, cross-field date order, and enable-when (an answer
to a disabled item is rejected); and POLICY-V2.md section 1: a listed "unsure" option is
unknown in any item type, and a checklist (a multi_choice with the reserved option "none") is
non-empty, without duplicates, with "none" on its own. All problems are collected and raised
together.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.engine.conditions import DISABLED, MISSING, NONE_OPTION, UNSURE, UNSURE_OPTION
from app.engine.errors import AnswerError, AnswerErrors
from app.engine.logic import FALSE
from app.engine.model import (
    ChoiceItem,
    DateItem,
    IntegerItem,
    Item,
    MultiChoiceItem,
    YesNoUnsureItem,
)
from app.engine.ruleset import Ruleset

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
Parsed = tuple[object, AnswerError | None]


@dataclass(frozen=True, slots=True)
class Answers:
    """A validated answer set.

    Attributes:
        values: the answered items' values exactly as submitted ("unsure" included; no nulls).
        state: every item of the questionnaire: its parsed value, or MISSING (enabled,
            unanswered), UNSURE, or DISABLED (the question does not apply).
    """

    values: dict[str, Any]
    state: dict[str, object]

    def applies(self, item_id: str) -> bool:
        """Whether the question applies: False when its enable_when is definitely false."""
        return self.state[item_id] is not DISABLED


def validate_answers(ruleset: Ruleset, raw: object, *, as_of: date) -> Answers:
    """Validate an answers object; a missing or null answer is unanswered (unknown).

    Args:
        ruleset: the rule pack whose questionnaire defines the items.
        raw: the decoded JSON object, item id to answer.
        as_of: the screening date; dates after it are rejected.

    Returns:
        The validated answers.

    Raises:
        AnswerErrors: with every problem found; messages never repeat submitted values.
    """
    if not isinstance(raw, dict):
        message = "answers must be a JSON object mapping item ids to answers"
        raise AnswerErrors([AnswerError("not_an_object", "", message)])
    errors = [
        AnswerError("unknown_item", str(key), f"{key!s:.64} is not an item of this questionnaire")
        for key in raw
        if key not in ruleset.items
    ]
    state: dict[str, object] = {}
    values: dict[str, Any] = {}
    for item_id, compiled in ruleset.items.items():
        value = raw.get(item_id)
        if compiled.is_enabled is not None and compiled.is_enabled(state, as_of) is FALSE:
            # Policy: a question that does not apply compares as false, not unknown.
            state[item_id] = DISABLED
            if value is not None:
                errors.append(AnswerError("item_disabled", item_id, _disabled_message(compiled)))
            continue
        if value is None:
            state[item_id] = MISSING
            continue
        parsed, error = _PARSERS[compiled.item.type](compiled.item, value, as_of)
        if error is not None:
            errors.append(error)
            state[item_id] = MISSING
            continue
        state[item_id] = parsed
        values[item_id] = value
    errors.extend(_date_order_errors(ruleset, state))
    if errors:
        raise AnswerErrors(errors)
    return Answers(values=values, state=state)


def _disabled_message(compiled: Any) -> str:
    sources = sorted(set(compiled.enable_when.item_ids()))
    return (
        f"{compiled.item.id} does not apply given the answer to {', '.join(sources)}; "
        "leave it out or send null"
    )


def _date_order_errors(ruleset: Ruleset, state: dict[str, object]) -> list[AnswerError]:
    errors = []
    for item_id, compiled in ruleset.items.items():
        item = compiled.item
        if isinstance(item, DateItem) and item.not_before is not None:
            value, earliest = state[item_id], state[item.not_before]
            if isinstance(value, date) and isinstance(earliest, date) and value < earliest:
                message = f"{item_id} must not be before {item.not_before}"
                errors.append(AnswerError("inconsistent_dates", item_id, message))
    return errors


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _wrong_type(item: Item, expected: str, value: object) -> Parsed:
    return None, AnswerError(
        "wrong_type", item.id, f"{item.id} must be {expected}, not {_kind(value)}"
    )


_YES_NO = ("yes", "no")
_YES_NO_UNSURE = ("yes", "no", "unsure")


def _parse_yes_no(item: Item, value: object, as_of: date) -> Parsed:
    allowed = _YES_NO_UNSURE if isinstance(item, YesNoUnsureItem) else _YES_NO
    if value.__class__ is str and value in allowed:  # the common case first: no messages built
        return (UNSURE if value == "unsure" else value), None
    listed = ", ".join(f'"{one}"' for one in allowed)
    if not isinstance(value, str):
        return _wrong_type(item, f"one of the strings {listed}", value)
    if value not in allowed:
        return None, AnswerError("bad_choice", item.id, f"{item.id} must be one of {listed}")
    return (UNSURE if value == "unsure" else value), None


def _parse_choice(item: Item, value: object, as_of: date) -> Parsed:
    assert isinstance(item, ChoiceItem)
    options = [option.value for option in item.options]
    if not isinstance(value, str):
        return _wrong_type(item, "a string, one of the listed options", value)
    if value not in options:
        return None, AnswerError(
            "bad_choice", item.id, f"{item.id} must be one of: {', '.join(options)}"
        )
    # Policy v2 section 1.1: a listed "unsure" is unknown in every item type, never a value.
    return (UNSURE if value == UNSURE_OPTION else value), None


def _parse_multi_choice(item: Item, value: object, as_of: date) -> Parsed:
    assert isinstance(item, MultiChoiceItem)
    options = [option.value for option in item.options]
    if not isinstance(value, list) or not all(isinstance(one, str) for one in value):
        return _wrong_type(item, "a list of option strings", value)
    is_checklist = NONE_OPTION in options
    if not value and is_checklist:
        # Policy v2 section 1.2 and D4: "I have none of these" is always an explicit act.
        message = f'{item.id}: select at least one choice, or "{NONE_OPTION}"'
        return None, AnswerError("empty_selection", item.id, message)
    if len(value) < item.min_selected:
        message = f"{item.id} needs at least {item.min_selected} selected option(s)"
        return None, AnswerError("empty_selection", item.id, message)
    if not is_checklist and (
        any(one not in options for one in value) or len(set(value)) != len(value)
    ):
        message = f"{item.id} must list distinct options from: {', '.join(options)}"
        return None, AnswerError("bad_choice", item.id, message)
    if any(one not in options for one in value):
        message = f"{item.id} must list options from: {', '.join(options)}"
        return None, AnswerError("bad_choice", item.id, message)
    if len(set(value)) != len(value):
        # The position, never the value: messages are safe to log and to return.
        position = next(i for i, one in enumerate(value) if one in value[:i]) + 1
        message = f"{item.id}: the choice at position {position} is selected more than once"
        return None, AnswerError("duplicate_choice", item.id, message)
    if is_checklist and NONE_OPTION in value and len(value) > 1:
        message = f'{item.id}: "{NONE_OPTION}" cannot be combined with other choices'
        return None, AnswerError("none_not_alone", item.id, message)
    return frozenset(value), None


def _parse_integer(item: Item, value: object, as_of: date) -> Parsed:
    assert isinstance(item, IntegerItem)
    if isinstance(value, bool) or not isinstance(value, int):
        return _wrong_type(item, "a JSON integer", value)
    if not item.min <= value <= item.max:
        unit = f" {item.unit}" if item.unit else ""
        message = f"{item.id} must be from {item.min} to {item.max}{unit}"
        return None, AnswerError("out_of_range", item.id, message)
    return value, None


def _parse_date(item: Item, value: object, as_of: date) -> Parsed:
    if not isinstance(value, str):
        return _wrong_type(item, 'a date string "YYYY-MM-DD"', value)
    try:
        if not _DATE.match(value):
            raise ValueError
        parsed = date.fromisoformat(value)
    except ValueError:
        message = f'{item.id} must be a real calendar date written "YYYY-MM-DD"'
        return None, AnswerError("invalid_date", item.id, message)
    if parsed > as_of:
        message = f"{item.id} must not be after the screening date {as_of.isoformat()}"
        return None, AnswerError("future_date", item.id, message)
    return parsed, None


_PARSERS: dict[str, Callable[[Item, object, date], Parsed]] = {
    "yes_no": _parse_yes_no,
    "yes_no_unsure": _parse_yes_no,
    "choice": _parse_choice,
    "multi_choice": _parse_multi_choice,
    "integer": _parse_integer,
    "date": _parse_date,
}
