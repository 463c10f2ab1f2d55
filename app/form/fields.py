"""Parse a submitted question page into answers, leniently, as the GOV.UK patterns advise.

Dates arrive as three boxes (month, day, year): one or two digits, or a month name in English
or Spanish. A blood pressure typed as "135/85" in the first box is split. Answers come out as
the API's JSON values, so the engine validates them exactly as it validates an API request.
"""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.engine import AnswerError
from app.engine.conditions import NONE_OPTION, UNSURE_OPTION
from app.engine.model import (
    ChoiceItem,
    DateItem,
    IntegerItem,
    Item,
    MultiChoiceItem,
    YesNoItem,
    YesNoUnsureItem,
)

READING_UNIT = "mmHg"
READING_UNKNOWN = "reading-unknown"
DATE_PARTS = ("month", "day", "year")
_MONTHS = {
    name: number
    for names in (
        "january february march april may june july august september october november december",
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    )
    for number, name in enumerate(names.split(), start=1)
} | {"setiembre": 9}
_READING = re.compile(r"^(\d{2,3})\s*/\s*(\d{2,3})$")
Form = Mapping[str, list[str]]


@dataclass(frozen=True, slots=True)
class FieldError:
    """A problem with one answer: a message key, the input to link to, and its parameters."""

    item: str
    key: str
    anchor: str
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class Parsed:
    """A page's answers (answered items only), "I don't know" items, raw input and errors."""

    values: dict[str, Any] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    raw: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)


def choice_values(item: Item) -> tuple[str, ...]:
    """The values a radio item accepts, in display order."""
    if isinstance(item, ChoiceItem):
        return tuple(option.value for option in item.options)
    return ("yes", "no") if isinstance(item, YesNoItem) else ("yes", "no", "unsure")


def exclusive_option(item: Item) -> str | None:
    """The exclusive "None of these" value of a checklist (policy v2 section 1.2), if any.

    Any multi_choice item that lists the reserved option ``none`` is a checklist: "None of
    these" stands apart from the other options, alone. There is no special case per item.
    """
    if isinstance(item, MultiChoiceItem) and any(o.value == NONE_OPTION for o in item.options):
        return NONE_OPTION
    return None


def unsure_option(item: Item) -> str | None:
    """The value shown as "I'm not sure" after an "or" divider among a radio item's answers."""
    if not isinstance(item, ChoiceItem | YesNoUnsureItem):
        return None
    return UNSURE_OPTION if UNSURE_OPTION in choice_values(item) else None


def reading_items(items: tuple[Item, ...]) -> tuple[IntegerItem, ...]:
    """The blood pressure numbers among ``items`` (shown together with "I don't know")."""
    return tuple(i for i in items if isinstance(i, IntegerItem) and i.unit == READING_UNIT)


def _first(form: Form, name: str) -> str:
    values = form.get(name) or [""]
    return values[-1].strip()


def parse_page(items: tuple[Item, ...], form: Form) -> Parsed:
    """Parse the submitted inputs of the page's ``items`` (the ones shown)."""
    parsed = Parsed()
    readings = reading_items(items)
    _split_reading(readings, form, parsed)
    for item in items:
        if isinstance(item, MultiChoiceItem):
            _parse_checkboxes(item, form, parsed)
        elif isinstance(item, IntegerItem):
            _parse_integer(item, parsed.raw.get(item.id, _first(form, item.id)), parsed)
        elif isinstance(item, DateItem):
            _parse_date(item, form, parsed)
        else:
            value = _first(form, item.id)
            parsed.raw[item.id] = value
            if value in choice_values(item):
                parsed.values[item.id] = value
            elif item.required or value:
                parsed.errors.append(FieldError(item.id, "error.choose_one", item.id))
    if readings and _first(form, READING_UNKNOWN) == "yes":
        parsed.raw[READING_UNKNOWN] = True
        if any(reading.id in parsed.values for reading in readings):
            parsed.errors.append(
                FieldError(readings[0].id, "error.reading_and_unknown", readings[0].id)
            )
        parsed.unknown |= {reading.id for reading in readings}
    return parsed


def _split_reading(readings: tuple[IntegerItem, ...], form: Form, parsed: Parsed) -> None:
    # "135/85" typed into the top-number box is an unambiguous whole reading.
    if len(readings) == 2:
        top, bottom = readings
        match = _READING.match(_first(form, top.id))
        if match and not _first(form, bottom.id):
            parsed.raw[top.id], parsed.raw[bottom.id] = match.group(1), match.group(2)


def _parse_checkboxes(item: MultiChoiceItem, form: Form, parsed: Parsed) -> None:
    chosen = set(form.get(item.id) or [])
    values = [option.value for option in item.options if option.value in chosen]
    parsed.raw[item.id] = values
    exclusive = exclusive_option(item)
    if exclusive is not None and exclusive in values and len(values) > 1:
        # Without JavaScript nothing unticks the others: the server says what to do instead.
        parsed.errors.append(FieldError(item.id, "error.none_not_alone", item.id))
    elif values:
        parsed.values[item.id] = values
    elif exclusive is not None:
        # A checklist is never left empty: "None of these" is an answer to tick (policy v2 D4).
        parsed.errors.append(FieldError(item.id, "error.choose_some_or_none", item.id))
    elif item.required or item.min_selected:
        parsed.errors.append(FieldError(item.id, "error.choose_some", item.id))


def _parse_integer(item: IntegerItem, text: str, parsed: Parsed) -> None:
    parsed.raw[item.id] = text
    cleaned = re.sub(r"[\s,]", "", text)
    cleaned = re.sub(r"(mmhg|months?|meses?)$", "", cleaned.lower())
    if not cleaned:
        if item.required:
            parsed.errors.append(FieldError(item.id, "error.number_missing", item.id))
    elif cleaned.isdigit() and len(cleaned) <= 6:
        parsed.values[item.id] = int(cleaned)
    else:
        parsed.errors.append(FieldError(item.id, "error.not_a_number", item.id))


def parse_month(text: str) -> int | None:
    """A month from "3", "03", "Mar", "March", "marzo" or "sept."; None if it is not one."""
    if text.isdigit():
        return int(text) if 1 <= int(text) <= 12 else None
    folded = unicodedata.normalize("NFKD", text.lower().rstrip("."))
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    if len(folded) < 3:
        return None
    matches = {number for name, number in _MONTHS.items() if name.startswith(folded)}
    return matches.pop() if len(matches) == 1 else None


def _parse_date(item: DateItem, form: Form, parsed: Parsed) -> None:
    parts = {part: _first(form, f"{item.id}-{part}") for part in DATE_PARTS}
    parsed.raw[item.id] = parts
    missing = [part for part in DATE_PARTS if not parts[part]]
    if len(missing) == len(DATE_PARTS):
        if item.required:
            parsed.errors.append(FieldError(item.id, "error.date_missing", f"{item.id}-month"))
        return
    if missing:
        anchor = f"{item.id}-{missing[0]}"
        parsed.errors.append(FieldError(item.id, "error.date_incomplete", anchor))
        return
    month = parse_month(parts["month"])
    day, year = parts["day"], parts["year"]
    if month is None:
        parsed.errors.append(FieldError(item.id, "error.date_month", f"{item.id}-month"))
        return
    if not (year.isdigit() and len(year) == 4 and year >= "1900"):
        parsed.errors.append(FieldError(item.id, "error.date_year", f"{item.id}-year"))
        return
    try:
        value = date(int(year), month, int(day) if day.isdigit() else 0)
    except ValueError:
        parsed.errors.append(FieldError(item.id, "error.date_invalid", f"{item.id}-day"))
        return
    parsed.values[item.id] = value.isoformat()


def anchor_of(item: Item) -> str:
    """The id of an item's first input (where an error summary link points)."""
    return f"{item.id}-month" if isinstance(item, DateItem) else item.id


_ENGINE_KEYS = {
    "future_date": "error.date_future",
    "invalid_date": "error.date_invalid",
    "empty_selection": "error.choose_some",
    "none_not_alone": "error.none_not_alone",
}


def translate_engine_errors(
    errors: list[AnswerError], items: Mapping[str, Item], page_ids: frozenset[str]
) -> list[FieldError]:
    """Turn the engine's errors about this page's answers into patient-language errors.

    An inconsistent date on another page (the concussion date, after the date of birth was
    changed) is shown on the page's own date that caused it.
    """
    result = []
    for error in errors:
        item = items.get(error.item)
        if item is None:
            continue
        if error.code == "inconsistent_dates" and isinstance(item, DateItem):
            if item.id in page_ids:
                result.append(FieldError(item.id, "error.date_before_birth", anchor_of(item)))
            elif item.not_before in page_ids:
                source = items[item.not_before]
                result.append(FieldError(source.id, "error.birth_after_other", anchor_of(source)))
        elif item.id in page_ids and error.code == "out_of_range" and isinstance(item, IntegerItem):
            bounds = {"min": item.min, "max": item.max}
            result.append(FieldError(item.id, "error.out_of_range", item.id, bounds))
        elif item.id in page_ids:
            key = _ENGINE_KEYS.get(error.code, "error.check")
            if key == "error.choose_some" and exclusive_option(item) is not None:
                key = "error.choose_some_or_none"
            result.append(FieldError(item.id, key, anchor_of(item)))
    return result
