"""Form pages from the questionnaire: which apply given the answers so far, and what comes next.

Pages follow the questionnaire's groups. A group is split where an item's enable_when reads an
item on the same page (hypertension, then bp_controlled), so the server can decide from the
answers whether the follow-up applies: the form works without JavaScript. Enablement is the
engine's (``validate_answers``): a question is shown unless its enable_when is definitely false.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.engine import AnswerErrors, Answers, Ruleset, validate_answers
from app.engine.model import Group, Item
from app.form.fields import FieldError, Parsed, translate_engine_errors

State = Answers
"""Every item's standing for the answers so far: what applies and what is answered."""


@dataclass(frozen=True, slots=True)
class Page:
    """One question page: some items of one group, in display order."""

    id: str
    group: Group
    items: tuple[Item, ...]

    @property
    def item_ids(self) -> frozenset[str]:
        """The ids of the page's items."""
        return frozenset(item.id for item in self.items)


@dataclass(slots=True)
class Draft:
    """The answers in progress, kept encrypted on the invitation between pages.

    Attributes:
        answers: valid answers (API JSON values) to items that apply.
        seen: items the patient has been shown and has submitted a page with.
        unknown: items answered "I don't know" (sent as unanswered: unknown to the rules).
        confirmed_reading: an unusual blood pressure reading ("76/118") the patient confirmed
            when the form asked them to check it (see ``app.form.reading``).
    """

    answers: dict[str, Any] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    confirmed_reading: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form stored (encrypted) on the invitation."""
        return {
            "answers": self.answers,
            "seen": sorted(self.seen),
            "unknown": sorted(self.unknown),
            "confirmed_reading": self.confirmed_reading,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Draft":
        """Rebuild a draft from its stored JSON form (drafts saved before the check lack it)."""
        return cls(
            dict(data["answers"]),
            set(data["seen"]),
            set(data["unknown"]),
            data.get("confirmed_reading"),
        )


def build_pages(ruleset: Ruleset) -> tuple[Page, ...]:
    """Split the questionnaire's groups into pages (see the module docstring)."""
    pages: list[Page] = []
    for group in ruleset.questionnaire.groups:
        steps: list[list[Item]] = [[]]
        for item in group.items:
            compiled = ruleset.items[item.id]
            reads = set(compiled.enable_when.item_ids()) if compiled.enable_when else set()
            if reads & {one.id for one in steps[-1]}:
                steps.append([])
            steps[-1].append(item)
        for number, step in enumerate(steps, start=1):
            page_id = group.id if number == 1 else f"{group.id}-{number}"
            pages.append(Page(id=page_id, group=group, items=tuple(step)))
    return tuple(pages)


def drop_disabled(
    ruleset: Ruleset, answers: dict[str, Any], *, as_of: date, drop_invalid: bool = False
) -> dict[str, Any]:
    """Remove answers to questions that no longer apply (their enable_when became false).

    Changing sex at birth to male removes the pregnancy answers; the rules then see those
    questions as not applying rather than rejecting the answers. With ``drop_invalid``, any
    other invalid answer (which a saved draft never holds) goes too, so the result validates.
    """
    answers = dict(answers)
    while True:
        try:
            validate_answers(ruleset, answers, as_of=as_of)
        except AnswerErrors as error:
            drop = {e.item for e in error.errors if e.code == "item_disabled"}
            if not drop and drop_invalid:
                drop = {e.item for e in error.errors}
            if drop:
                answers = {key: value for key, value in answers.items() if key not in drop}
                continue
        return answers


def apply_page(
    ruleset: Ruleset, draft: Draft, shown: tuple[Item, ...], parsed: Parsed, *, as_of: date
) -> tuple[Draft, list[FieldError]]:
    """Merge a submitted page into the draft; the errors to show instead, if any.

    The engine validates the merged answers exactly as for an API request; its errors are
    translated into patient language. Answers that no longer apply are dropped, and answers
    on other pages that this page made invalid are dropped so that they are asked again.
    """
    page_ids = frozenset(item.id for item in shown)
    kept = {key: value for key, value in draft.answers.items() if key not in page_ids}
    answers = drop_disabled(ruleset, kept | parsed.values, as_of=as_of) | parsed.values
    errors = list(parsed.errors)
    seen = draft.seen | page_ids
    try:
        validate_answers(ruleset, answers, as_of=as_of)
    except AnswerErrors as error:
        items = {item_id: compiled.item for item_id, compiled in ruleset.items.items()}
        page_errors = translate_engine_errors(error.errors, items, page_ids)
        if errors or page_errors:
            return draft, errors + page_errors
        stale = {e.item for e in error.errors}
        answers = {key: value for key, value in answers.items() if key not in stale}
        seen -= stale
    if errors:
        return draft, errors
    unknown = (draft.unknown - page_ids) | parsed.unknown
    confirmed = draft.confirmed_reading
    updated, _ = prune(ruleset, Draft(answers, seen, unknown, confirmed), as_of=as_of)
    return updated, []


def progress(pages: tuple[Page, ...], page: Page, state: State) -> tuple[int, int]:
    """The page's number among the pages the patient sees, and how many they see.

    Pages, not sections: a section split over two pages must not show one number twice.
    """
    shown = [p.id for p in pages if shown_items(p, state)]
    return shown.index(page.id) + 1 if page.id in shown else 1, len(shown)


def item_states(ruleset: Ruleset, answers: dict[str, Any], *, as_of: date) -> State:
    """The validated answers: which questions apply, and which are answered."""
    return validate_answers(ruleset, answers, as_of=as_of)


def prune(ruleset: Ruleset, draft: Draft, *, as_of: date) -> tuple[Draft, State]:
    """Drop answers (and "seen" marks) of questions that no longer apply; return the states."""
    answers = drop_disabled(ruleset, draft.answers, as_of=as_of, drop_invalid=True)
    state = item_states(ruleset, answers, as_of=as_of)
    enabled = {item.id for item in ruleset.questionnaire.items if state.applies(item.id)}
    pruned = Draft(answers, draft.seen & enabled, draft.unknown & enabled, draft.confirmed_reading)
    return pruned, state


def shown_items(page: Page, state: State) -> tuple[Item, ...]:
    """The page's items that apply (enable_when not definitely false)."""
    return tuple(item for item in page.items if state.applies(item.id))


def next_page(pages: tuple[Page, ...], current: Page | None, state: State) -> Page | None:
    """The first page after ``current`` (or the first page) with a question that applies."""
    start = 0 if current is None else pages.index(current) + 1
    return next((page for page in pages[start:] if shown_items(page, state)), None)


def previous_page(pages: tuple[Page, ...], current: Page | None, state: State) -> Page | None:
    """The last page before ``current`` (None: the end) with a question that applies."""
    before = pages if current is None else pages[: pages.index(current)]
    return next((page for page in reversed(before) if shown_items(page, state)), None)


def first_unfinished(pages: tuple[Page, ...], draft: Draft, state: State) -> Page | None:
    """The first page with a question that applies and was never answered or seen.

    After a Change, this asks the questions that now apply (e.g. bp_controlled after
    hypertension changed to yes) before returning to the check page.
    """
    for page in pages:
        for item in shown_items(page, state):
            is_missing = item.id not in state.values and item.required
            if item.id not in draft.seen or is_missing:
                return page
    return None


def page_by_id(pages: tuple[Page, ...], page_id: str) -> Page | None:
    """The page with this id, if any."""
    return next((page for page in pages if page.id == page_id), None)
