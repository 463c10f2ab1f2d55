"""Stored answers in the words the patient read, and how ticked options link to the rules.

Everything here reads the rule pack a screening was decided with (never today's pack) and
works from each rule's condition tree, with no case per item or rule id:

- a ticked checklist option *fired* a rule when the rule fired and the option is one of the
  values of a ``contains_any`` leaf of the rule that is not under a ``not``;
- a checklist with "I'm not sure" ticked leaves *open* the values a rule's ``contains_any``
  leaves list on that item that the patient did not tick (policy v2 section 1.2).
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.engine.conditions import (
    NONE_OPTION,
    UNSURE_OPTION,
    AllOf,
    AnyOf,
    Leaf,
    Node,
    Not,
    leaves_of,
)
from app.engine.leaves import ContainsAny
from app.engine.model import ChoiceItem, Item, MultiChoiceItem
from app.engine.ruleset import CompiledRule

_YES_NO = {"yes": "Yes", "no": "No", UNSURE_OPTION: "I'm not sure"}


@dataclass(frozen=True, slots=True)
class ChoiceView:
    """One ticked option of a checklist, in words.

    ``kind`` is ``option`` for an ordinary option (a condition), ``none`` for "None of these"
    and ``unsure`` for "I'm not sure about one or more of these". ``fired`` holds the titles
    of the fired rules this option triggered; ``left_open`` (``unsure`` only) the titles of
    the rules the patient's uncertainty left not ruled out.
    """

    value: str
    text: str
    kind: str
    fired: tuple[str, ...] = ()
    left_open: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OpenOption:
    """A listed option the patient neither ticked nor ruled out, and the rules it leaves open."""

    text: str
    rules: tuple[str, ...]


def is_unsure(value: Any) -> bool:
    """Whether an answer is "not sure": ``"unsure"``, or a checklist with "unsure" ticked."""
    if isinstance(value, list):
        return UNSURE_OPTION in value
    return bool(value == UNSURE_OPTION)


def format_answer(item: Item, value: Any) -> str:
    """The patient's answer as the form showed it (option texts, units)."""
    if value is None:
        return "Not answered"
    if item.type in {"yes_no", "yes_no_unsure"}:
        return _YES_NO.get(str(value), str(value))
    if isinstance(item, ChoiceItem | MultiChoiceItem):
        texts = {o.value: o.text for o in item.options}
        if isinstance(value, list):
            return "; ".join(texts.get(v, str(v)) for v in value)
        return texts.get(value, str(value))
    if item.type == "integer" and item.unit:
        return f"{value} {item.unit}"
    return str(value)


def choices(
    item: MultiChoiceItem,
    value: list[str],
    fired: Mapping[str, tuple[str, ...]],
    left_open: tuple[str, ...],
) -> tuple[ChoiceView, ...]:
    """The ticked options in the order the form listed them, each with its rule markers."""
    listed = [o for o in item.options if o.value in value]
    unlisted = [v for v in value if v not in {o.value for o in listed}]  # never for a valid answer
    return tuple(
        ChoiceView(
            v,
            text,
            _kind(v),
            fired.get(v, ()),
            left_open if v == UNSURE_OPTION else (),
        )
        for v, text in [(o.value, o.text) for o in listed] + [(v, v) for v in unlisted]
    )


def firing_options(
    fired_rules: Iterable[CompiledRule], answers: Mapping[str, Any]
) -> dict[str, dict[str, tuple[str, ...]]]:
    """Item id → ticked option → titles of the fired rules that option triggered."""
    found: dict[str, dict[str, list[str]]] = {}
    for rule in fired_rules:
        for leaf in _positive_leaves(rule.node):
            value = answers.get(leaf.item)
            if not isinstance(leaf, ContainsAny) or not isinstance(value, list):
                continue
            for option in value:
                if option in leaf.values:
                    titles = found.setdefault(leaf.item, {}).setdefault(option, [])
                    if rule.title not in titles:
                        titles.append(rule.title)
    return {
        item: {option: tuple(titles) for option, titles in options.items()}
        for item, options in found.items()
    }


def open_options(rule: CompiledRule, item: MultiChoiceItem, value: list[str]) -> tuple[str, ...]:
    """The option values the rule lists on ``item`` that the patient did not tick, in form order."""
    listed: set[str] = set()
    for leaf in leaves_of(rule.node):
        if isinstance(leaf, ContainsAny) and leaf.item == item.id:
            listed |= leaf.values
    return tuple(o.value for o in item.options if o.value in listed and o.value not in value)


def option_text(item: MultiChoiceItem, value: str) -> str:
    """The text the patient read for one option of ``item``."""
    return next((o.text for o in item.options if o.value == value), value)


def _kind(value: str) -> str:
    if value == NONE_OPTION:
        return "none"
    return "unsure" if value == UNSURE_OPTION else "option"


def _positive_leaves(node: Node) -> Iterator[Leaf]:
    """The leaves whose truth can make the condition true: every leaf not under a ``not``."""
    if isinstance(node, AnyOf | AllOf):
        for part in node.parts:
            yield from _positive_leaves(part)
    elif not isinstance(node, Not):
        yield node
