"""The blood pressure check: a reading that looks like a slip is confirmed before it is saved.

A top number that is not bigger than the bottom one (76/118) is almost always the two numbers
typed into the wrong boxes; numbers a home monitor cannot show are usually a typo. The rules
would then flag uncontrolled blood pressure, so the form asks the patient to check (GOV.UK
"check your answer" pattern, server-rendered: it works without JavaScript). A confirmed
reading is kept as the patient gave it; the physician's page says it was confirmed. The API
is unchanged: it accepts any reading in the items' ranges.
"""

from collections.abc import Mapping
from typing import Any

from app.engine.model import Item
from app.form.fields import reading_items
from app.review.detail import READING_CONFIRMED_ACTION

# What home monitors display; outside it the number is almost certainly mistyped.
TOP_RANGE = range(60, 251)
BOTTOM_RANGE = range(40, 151)
CONFIRM_FIELD = "reading-confirmed"
AUDIT_ACTION = READING_CONFIRMED_ACTION


def unusual(items: tuple[Item, ...], answers: Mapping[str, Any]) -> str | None:
    """``"76/118"`` when the page's reading needs checking, else None.

    Checked: both numbers given, and the top one not bigger than the bottom one, or either
    outside what a home monitor shows.
    """
    readings = reading_items(items)
    if len(readings) != 2:
        return None
    top, bottom = (answers.get(item.id) for item in readings)
    if not isinstance(top, int) or not isinstance(bottom, int):
        return None
    if top <= bottom or top not in TOP_RANGE or bottom not in BOTTOM_RANGE:
        return f"{top}/{bottom}"
    return None


def problem(reading: str) -> str:
    """The message key for the check: swapped numbers, or numbers out of a monitor's range."""
    top, bottom = (int(part) for part in reading.split("/"))
    return "reading.check_swapped" if top <= bottom else "reading.check_range"
