"""What the templates show: question fields, the check-answers rows, reference numbers.

Pure presentation over the questionnaire, the draft and the page's language; no I/O.
"""

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.engine.model import (
    ChoiceItem,
    DateItem,
    IntegerItem,
    Item,
    MultiChoiceItem,
    YesNoItem,
)
from app.form.fields import (
    DATE_PARTS,
    READING_UNKNOWN,
    FieldError,
    choice_values,
    exclusive_option,
    reading_items,
    unsure_option,
)
from app.form.pages import Draft, Page, State, shown_items
from app.form.text import Text

BIRTH_DATE_ITEM = "date_of_birth"
MONTHS = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "es": [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ],
}


@dataclass(frozen=True, slots=True)
class OptionView:
    """One radio or checkbox."""

    id: str
    value: str
    text: str
    is_checked: bool


@dataclass(slots=True)
class FieldView:
    """One question as the template renders it."""

    item_id: str
    kind: str  # radios | checkboxes | number | date
    question: str
    help: str | None
    why: str | None
    is_optional: bool
    error: str | None = None
    options: list[OptionView] = field(default_factory=list)
    unsure: OptionView | None = None  # "I'm not sure", after an "or" divider
    exclusive: OptionView | None = None  # "None of these", after an "or" divider
    is_inline: bool = False
    value: str = ""
    parts: dict[str, str] = field(default_factory=dict)
    autocomplete: str | None = None  # "bday" on the date of birth only (WCAG 1.3.5)
    unit: str | None = None

    @property
    def described_by(self) -> str:
        """The ids of the hint, why-we-ask line and error message, for aria-describedby."""
        ids = [
            f"{self.item_id}-{suffix}"
            for suffix, present in (
                ("hint", self.help or self.kind == "date"),
                ("why", self.why),
                ("error", self.error),
            )
            if present
        ]
        return " ".join(ids)


@dataclass(slots=True)
class ReadingView:
    """The blood pressure numbers, shown together with "I don't know my reading"."""

    fields: list[FieldView]
    is_unknown: bool
    error: str | None


@dataclass(slots=True)
class QuestionPage:
    """A question page: its fields (and reading group), error summary and navigation."""

    page: Page
    title: str
    fields: list[FieldView]
    reading: ReadingView | None
    summary: list[tuple[str, str]]  # (anchor, text) of the error summary


def _current(item: Item, draft: Draft, raw: dict[str, Any] | None) -> Any:
    if raw is not None:
        return raw.get(item.id)
    value = draft.answers.get(item.id)
    if isinstance(item, DateItem) and isinstance(value, str):
        year, month, day = value.split("-")
        return {"month": str(int(month)), "day": str(int(day)), "year": year}
    return value


def _field(item: Item, text: Text, value: Any, error: str | None) -> FieldView:
    view = FieldView(
        item.id, "radios", text.question(item), text.help(item), text.why(item),
        not item.required, error,
    )  # fmt: skip
    if isinstance(item, MultiChoiceItem):
        view.kind = "checkboxes"
        chosen = set(value or [])
        options = [
            OptionView(_option_id(item.id, n), o.value, text.option(item, o), o.value in chosen)
            for n, o in enumerate(item.options)
        ]
        # GOV.UK checkboxes: the conditions (and "I'm not sure about one or more of these"),
        # then "or", then the exclusive "None of these" (data-behaviour="exclusive").
        exclusive = exclusive_option(item)
        view.exclusive = next((o for o in options if o.value == exclusive), None)
        view.options = [o for o in options if o is not view.exclusive]
        view.help = view.help or text("checkboxes.hint")
    elif isinstance(item, IntegerItem):
        view.kind, view.value = "number", "" if value is None else str(value)
        view.unit = text.unit(item.unit) if item.unit else None
    elif isinstance(item, DateItem):
        view.kind, view.parts = "date", dict(value or dict.fromkeys(DATE_PARTS, ""))
        view.autocomplete = "bday" if item.id == BIRTH_DATE_ITEM else None
    else:
        labels = _choice_labels(item, text)
        options = [
            OptionView(_option_id(item.id, n), v, labels[v], v == value)
            for n, v in enumerate(choice_values(item))
        ]
        # "I'm not sure" comes last, after "or", whether the answers are Yes / No / I'm not sure
        # or a choice that lists "unsure" among its options (policy v2 section 1.1).
        unsure = unsure_option(item)
        view.unsure = next((o for o in options if o.value == unsure), None)
        view.options = [o for o in options if o is not view.unsure]
        # Two short answers sit side by side; with "I'm not sure" they stack (GOV.UK radios).
        view.is_inline = isinstance(item, YesNoItem)
    return view


def _option_id(item_id: str, number: int) -> str:
    # The first input carries the item id itself, so error links land on it.
    return item_id if number == 0 else f"{item_id}-{number + 1}"


def _choice_labels(item: Item, text: Text) -> dict[str, str]:
    if isinstance(item, ChoiceItem):
        return {option.value: text.option(item, option) for option in item.options}
    return {value: text(f"answer.{value}") for value in ("yes", "no", "unsure")}


def question_page(
    page: Page,
    state: State,
    draft: Draft,
    text: Text,
    *,
    raw: dict[str, Any] | None = None,
    errors: list[FieldError] | None = None,
) -> QuestionPage:
    """Build a question page from the draft, or from the raw input when it has errors."""
    items = shown_items(page, state)
    by_id = {item.id: item for item in items}
    messages = {e.item: _message(e, by_id.get(e.item), text) for e in reversed(errors or [])}
    readings = {item.id for item in reading_items(items)}
    views = {
        item.id: _field(item, text, _current(item, draft, raw), messages.get(item.id))
        for item in items
    }
    reading = None
    if readings:
        is_unknown = (
            bool(raw.get(READING_UNKNOWN)) if raw is not None else bool(draft.unknown & readings)
        )
        inner = [views[i] for i in views if i in readings]
        for view in inner:
            view.is_optional = False  # the reading's legend says it is optional
        reading = ReadingView(inner, is_unknown, None)
    summary = [
        (error.anchor, f"{views[error.item].question} {messages[error.item]}")
        for error in (errors or [])
        if error.item in views
    ]
    fields = [view for item_id, view in views.items() if item_id not in readings]
    return QuestionPage(
        page, text.group_title(page.group), fields, reading, list(dict.fromkeys(summary))
    )


def _message(error: FieldError, item: Item | None, text: Text) -> str:
    # Checklist messages name the "None of these" option in the page's language, as the
    # rule pack words it, so the message always matches the label beside the checkbox.
    params = dict(error.params)
    exclusive = exclusive_option(item) if item is not None else None
    if item is not None and exclusive is not None:
        assert isinstance(item, MultiChoiceItem)
        option = next(o for o in item.options if o.value == exclusive)
        params.setdefault("none", text.option(item, option))
    return text(error.key, **params)


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """One row of the check-answers page."""

    item_id: str
    question: str
    answer: list[str]
    change_href: str


@dataclass(frozen=True, slots=True)
class AnswerSection:
    """A group's rows on the check-answers page."""

    title: str
    rows: list[AnswerRow]


def answer_sections(
    pages: tuple[Page, ...], state: State, draft: Draft, text: Text, base: str
) -> list[AnswerSection]:
    """The check-answers sections: every question that applies, grouped as the form is."""
    sections: dict[str, AnswerSection] = {}
    for page in pages:
        for item in shown_items(page, state):
            section = sections.setdefault(
                page.group.id, AnswerSection(text.group_title(page.group), [])
            )
            href = (
                f"{base}/q/{page.id}?change=1#{item.id}"
                if not isinstance(item, DateItem)
                else f"{base}/q/{page.id}?change=1#{item.id}-month"
            )
            section.rows.append(
                AnswerRow(item.id, text.question(item), display(item, draft, text), href)
            )
    return list(sections.values())


def display(item: Item, draft: Draft, text: Text) -> list[str]:
    """An answer as the patient reads it (one line per selected option)."""
    value = draft.answers.get(item.id)
    if value is None:
        return [text("check.dont_know" if item.id in draft.unknown else "check.not_answered")]
    if isinstance(item, MultiChoiceItem):
        return [text.option(item, o) for o in item.options if o.value in value]
    if isinstance(item, IntegerItem):
        return [f"{value} {text.unit(item.unit)}" if item.unit else str(value)]
    if isinstance(item, DateItem):
        return [format_date(date.fromisoformat(value), text.language)]
    return [_choice_labels(item, text)[value]]


def format_date(day: date, language: str) -> str:
    """A date written out for the page's language (March 27, 1985 / 27 de marzo de 1985)."""
    month = MONTHS[language][day.month - 1]
    if language == "es":
        return f"{day.day} de {month} de {day.year}"
    return f"{month} {day.day}, {day.year}"


def tel_href(phone: str) -> str:
    """A ``tel:`` link for a phone number as written (digits and a leading + only)."""
    return "tel:" + "".join(
        ch for n, ch in enumerate(phone.strip()) if ch.isdigit() or (ch == "+" and n == 0)
    )
