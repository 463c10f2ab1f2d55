"""Condition nodes: parsed from YAML with type checks, compiled once into closures.

A condition is a tree of `any` / `all` / `not` over leaf comparisons on one item each.
Leaves follow DESIGN.md "Three-valued logic": a comparison on a disabled item is false (the
question does not apply), on an enabled item that is unanswered or "unsure" it is unknown.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from app.engine.logic import FALSE, TRUE, UNKNOWN, Truth
from app.engine.model import DateItem, IntegerItem, Item, MultiChoiceItem

State = Mapping[str, object]
Test = Callable[[State, date], Truth]
Path = tuple[int | str, ...]
Report = Callable[[Path, str], None]


class _Marker:
    """A state an item can be in other than answered."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


MISSING: Final = _Marker("MISSING")
"""Enabled and not answered (absent or null): unknown."""
UNSURE: Final = _Marker("UNSURE")
"""Enabled and answered "unsure": unknown."""
DISABLED: Final = _Marker("DISABLED")
"""The item's enable_when is definitely false: every comparison on it is false."""


def age_on(born: date, on: date) -> int:
    """Whole years from ``born`` to ``on``: a person turns N on their Nth birthday.

    Someone born on 29 February turns a year older on 1 March in non-leap years.
    """
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass(frozen=True, slots=True)
class Leaf:
    """A comparison on one item; subclasses define the predicate on an answered value."""

    item: str

    def holds(self, value: Any, as_of: date) -> bool:
        """Return whether the predicate holds for an answered value."""
        raise NotImplementedError

    def describe(self, value: Any, as_of: date) -> str:
        """Describe, for a physician, why the predicate holds (or not) for this value."""
        raise NotImplementedError

    def compile(self) -> Test:
        """Return a closure computing this leaf's truth from an answer state."""
        item, holds = self.item, self.holds

        def test(state: State, as_of: date) -> Truth:
            value = state[item]
            if value is DISABLED:
                return FALSE
            if value is MISSING or value is UNSURE:
                return UNKNOWN
            return TRUE if holds(value, as_of) else FALSE

        return test

    def compile_state(self) -> Callable[[State, date], int]:
        """Return a closure giving this leaf's state.

        0 false, 1 true, 2 unanswered, 3 disabled, 4 unsure: unanswered and unsure are both
        unknown, kept apart so that the evidence of an unknown rule is known from the states.
        """
        item, holds = self.item, self.holds

        def leaf_state(state: State, as_of: date) -> int:
            value = state[item]
            if value is DISABLED:
                return 3
            if value is MISSING:
                return 2
            if value is UNSURE:
                return 4
            return 1 if holds(value, as_of) else 0

        return leaf_state

    def truth(self, state: State, as_of: date) -> Truth:
        """Return this leaf's truth for an answer state (the slow path, for explanations)."""
        value = state[self.item]
        if value is DISABLED:
            return FALSE
        if value is MISSING or value is UNSURE:
            return UNKNOWN
        return TRUE if self.holds(value, as_of) else FALSE

    def explain(self, state: State, as_of: date) -> tuple[Truth, list["Leaf"]]:
        """Return this leaf's truth and itself as the evidence."""
        return self.truth(state, as_of), [self]

    def item_ids(self) -> Iterator[str]:
        """Yield the item this leaf reads."""
        yield self.item


@dataclass(frozen=True, slots=True)
class IsIn(Leaf):
    """``is`` / ``in``: the answer is one of ``values``."""

    values: frozenset[Any]

    def holds(self, value: Any, as_of: date) -> bool:  # noqa: D102
        return bool(value in self.values)

    def compile(self) -> Test:  # noqa: D102 - specialised for the hot path
        item, values = self.item, self.values

        def test(state: State, as_of: date) -> Truth:
            value = state[item]
            if value is DISABLED:
                return FALSE
            if value is MISSING or value is UNSURE:
                return UNKNOWN
            return TRUE if value in values else FALSE

        return test

    def describe(self, value: Any, as_of: date) -> str:  # noqa: D102
        return f"{self.item} is {_show(value)}"


@dataclass(frozen=True, slots=True)
class Bounds(Leaf):
    """Numeric bounds, normalised to ``low <= answer < high`` (integers only)."""

    low: int | None
    high: int | None

    def holds(self, value: Any, as_of: date) -> bool:  # noqa: D102
        return bool(
            (self.low is None or value >= self.low) and (self.high is None or value < self.high)
        )

    def compile(self) -> Test:  # noqa: D102 - specialised for the hot path
        item = self.item
        low = self.low if self.low is not None else float("-inf")
        high = self.high if self.high is not None else float("inf")

        def test(state: State, as_of: date) -> Truth:
            value = state[item]
            if value is DISABLED:
                return FALSE
            if value is MISSING or value is UNSURE:
                return UNKNOWN
            return TRUE if low <= value < high else FALSE  # type: ignore[operator]

        return test

    def describe(self, value: Any, as_of: date) -> str:  # noqa: D102
        if self.high is None:
            bound = f"{self.low} or more"
        elif self.low is None:
            bound = f"{self.high - 1} or less"
        else:
            bound = f"{self.low} to {self.high - 1}"
        return f"{self.item} is {value} ({bound})"


@dataclass(frozen=True, slots=True)
class ContainsAny(Leaf):
    """``contains_any``: at least one selected option is listed."""

    values: frozenset[str]

    def holds(self, value: Any, as_of: date) -> bool:  # noqa: D102
        return not self.values.isdisjoint(value)

    def describe(self, value: Any, as_of: date) -> str:  # noqa: D102
        hits = sorted(self.values.intersection(value))
        return (
            f"{self.item} includes {', '.join(hits) if hits else 'none of ' + _list(self.values)}"
        )


@dataclass(frozen=True, slots=True)
class ContainsNone(Leaf):
    """``contains_none``: no selected option is listed."""

    values: frozenset[str]

    def holds(self, value: Any, as_of: date) -> bool:  # noqa: D102
        return self.values.isdisjoint(value)

    def describe(self, value: Any, as_of: date) -> str:  # noqa: D102
        hits = sorted(self.values.intersection(value))
        if hits:
            return f"{self.item} includes {', '.join(hits)}"
        return f"{self.item} includes none of {_list(self.values)}"


@dataclass(frozen=True, slots=True)
class WithinDays(Leaf):
    """``within_days``: the date is 0..days days (inclusive) before the as-of date."""

    days: int

    def holds(self, value: Any, as_of: date) -> bool:  # noqa: D102
        gap: int = (as_of - value).days
        return 0 <= gap <= self.days

    def describe(self, value: Any, as_of: date) -> str:  # noqa: D102
        gap = (as_of - value).days
        return f"{self.item} is {gap} days before {as_of.isoformat()} (window {self.days} days)"


@dataclass(frozen=True, slots=True)
class AgeBelow(Leaf):
    """``age_below``: whole years from the date to the as-of date are fewer than ``years``."""

    years: int

    def holds(self, value: Any, as_of: date) -> bool:  # noqa: D102
        return age_on(value, as_of) < self.years

    def describe(self, value: Any, as_of: date) -> str:  # noqa: D102
        return f"age {age_on(value, as_of)} on {as_of.isoformat()} (limit {self.years})"


@dataclass(frozen=True, slots=True)
class Not:
    """``not``: swaps true and false."""

    part: "Node"

    def compile(self) -> Test:
        """Return a closure computing the negation."""
        part = self.part.compile()

        def test(state: State, as_of: date) -> Truth:
            value = part(state, as_of)
            return FALSE if value is TRUE else TRUE if value is FALSE else UNKNOWN

        return test

    def explain(self, state: State, as_of: date) -> tuple[Truth, list[Leaf]]:
        """Return the negated truth and the part's evidence."""
        value, leaves = self.part.explain(state, as_of)
        return (FALSE if value is TRUE else TRUE if value is FALSE else UNKNOWN), leaves

    def item_ids(self) -> Iterator[str]:
        """Yield the items the part reads."""
        yield from self.part.item_ids()


@dataclass(frozen=True, slots=True)
class AnyOf:
    """``any``: true if any part is true, false if all are false, else unknown."""

    parts: tuple["Node", ...]

    def compile(self) -> Test:
        """Return a closure computing the Kleene disjunction, stopping at the first true."""
        parts = tuple(part.compile() for part in self.parts)

        def test(state: State, as_of: date) -> Truth:
            result = FALSE
            for part in parts:
                value = part(state, as_of)
                if value is TRUE:
                    return TRUE
                if value is UNKNOWN:
                    result = UNKNOWN
            return result

        return test

    def explain(self, state: State, as_of: date) -> tuple[Truth, list[Leaf]]:
        """Evidence: the true parts if true; every part if false; the unknown parts if unknown."""
        results = [part.explain(state, as_of) for part in self.parts]
        truths = [truth for truth, _ in results]
        value = TRUE if TRUE in truths else UNKNOWN if UNKNOWN in truths else FALSE
        return value, [
            leaf for truth, leaves in results if _decides(truth, value) for leaf in leaves
        ]

    def item_ids(self) -> Iterator[str]:
        """Yield the items every part reads."""
        for part in self.parts:
            yield from part.item_ids()


@dataclass(frozen=True, slots=True)
class AllOf:
    """``all``: false if any part is false, true if all are true, else unknown."""

    parts: tuple["Node", ...]

    def compile(self) -> Test:
        """Return a closure computing the Kleene conjunction, stopping at the first false."""
        parts = tuple(part.compile() for part in self.parts)

        def test(state: State, as_of: date) -> Truth:
            result = TRUE
            for part in parts:
                value = part(state, as_of)
                if value is FALSE:
                    return FALSE
                if value is UNKNOWN:
                    result = UNKNOWN
            return result

        return test

    def explain(self, state: State, as_of: date) -> tuple[Truth, list[Leaf]]:
        """Evidence: the false parts if false; otherwise every part that is not false."""
        results = [part.explain(state, as_of) for part in self.parts]
        truths = [truth for truth, _ in results]
        value = FALSE if FALSE in truths else UNKNOWN if UNKNOWN in truths else TRUE
        # A false whole is decided by its false parts; otherwise every part that is not
        # false matters (an unknown `all` would fire if its unknown parts turned true).
        return value, [
            leaf
            for truth, leaves in results
            if (truth is FALSE) == (value is FALSE)
            for leaf in leaves
        ]

    def item_ids(self) -> Iterator[str]:
        """Yield the items every part reads."""
        for part in self.parts:
            yield from part.item_ids()


Node = Leaf | Not | AnyOf | AllOf


def leaves_of(node: Node) -> tuple[Leaf, ...]:
    """Every leaf of a condition, depth first, in document order."""
    if isinstance(node, Leaf):
        return (node,)
    if isinstance(node, Not):
        return leaves_of(node.part)
    return tuple(leaf for part in node.parts for leaf in leaves_of(part))


def _decides(part: Truth, whole: Truth) -> bool:
    # In `any`, a true whole is decided by its true parts, an unknown one by its unknown
    # parts (the false parts cannot change it), and a false one by every part.
    return whole is FALSE or part is whole


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _list(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


_YES_NO = {"yes_no": ("yes", "no"), "yes_no_unsure": ("yes", "no")}
_BOUND_KEYS = ("at_least", "above", "at_most", "below")
_LEAF_KEYS = {"is", "in", "contains_any", "contains_none", "within_days", "age_below", *_BOUND_KEYS}


def parse(raw: object, items: Mapping[str, Item], path: Path, report: Report) -> Node | None:
    """Parse and type-check one condition; report every problem and return None on any.

    Args:
        raw: the YAML mapping.
        items: the questionnaire's items by id.
        path: where the condition sits in its document, for error lines.
        report: called with (path, message) for each problem.
    """
    if not isinstance(raw, dict) or not raw:
        report(path, 'a condition must be a mapping such as {item: X, is: "yes"} or {any: [...]}')
        return None
    keys = set(raw)
    if keys <= {"any", "all"} and len(keys) == 1:
        key = next(iter(keys))
        parts = raw[key]
        if not isinstance(parts, list) or not parts:
            report((*path, key), f"`{key}` needs a non-empty list of conditions")
            return None
        nodes = [parse(part, items, (*path, key, i), report) for i, part in enumerate(parts)]
        if any(node is None for node in nodes):
            return None
        children = tuple(node for node in nodes if node is not None)
        return AnyOf(children) if key == "any" else AllOf(children)
    if keys == {"not"}:
        node = parse(raw["not"], items, (*path, "not"), report)
        return Not(node) if node is not None else None
    if "item" in keys:
        return _parse_leaf(raw, items, path, report)
    report(
        path,
        f"unknown condition keys {sorted(keys)}: use any, all, not, or item with "
        f"one of {', '.join(sorted(_LEAF_KEYS))}",
    )
    return None


def _parse_leaf(
    raw: dict[str, Any], items: Mapping[str, Item], path: Path, report: Report
) -> Leaf | None:
    item_id = raw["item"]
    ops = set(raw) - {"item"}
    unknown = ops - _LEAF_KEYS
    if unknown:
        report(
            (*path, sorted(unknown)[0]),
            f"unknown comparison {sorted(unknown)}; use one of {', '.join(sorted(_LEAF_KEYS))}",
        )
        return None
    item = items.get(item_id) if isinstance(item_id, str) else None
    if item is None:
        report((*path, "item"), f"condition refers to unknown item {item_id!r}")
        return None
    if not ops:
        report(path, f"condition on {item_id!r} has no comparison")
        return None
    if ops <= set(_BOUND_KEYS):
        return _parse_bounds(raw, item, path, report)
    if len(ops) > 1:
        report(path, f"condition on {item_id!r} mixes comparisons {sorted(ops)}; use all: [...]")
        return None
    op = next(iter(ops))
    return _LEAF_PARSERS[op](raw[op], item, (*path, op), report)


def _parse_values(
    value: object, item: Item, path: Path, report: Report, *, many: bool
) -> frozenset[Any] | None:
    values = value if many else [value]
    if not isinstance(values, list) or not values:
        report(path, "needs a non-empty list of values")
        return None
    allowed: tuple[Any, ...] | None
    if item.type in _YES_NO:
        allowed = _YES_NO[item.type]
    elif item.type == "choice":
        allowed = tuple(option.value for option in item.options)
    elif item.type == "integer":
        allowed = None
    else:
        report(
            path,
            f"item {item.id!r} is {item.type}: `is`/`in` do not apply "
            f"(use contains_any/contains_none, within_days or age_below)",
        )
        return None
    ok = True
    for one in values:
        if isinstance(one, bool) or (allowed is None and not isinstance(one, int)):
            ok = False
            kind = 'a boolean (quote "yes"/"no")' if isinstance(one, bool) else type(one).__name__
            report(path, f"item {item.id!r} is {item.type}: cannot compare with {kind}")
        elif allowed is not None and one not in allowed:
            ok = False
            hint = ' ("unsure" is unknown, never a value to match)' if one == "unsure" else ""
            report(
                path,
                f"{one!r} is not a value of {item.id!r} ({item.type}: "
                f"{', '.join(map(str, allowed))}){hint}",
            )
    return frozenset(values) if ok else None


def _parse_is(value: object, item: Item, path: Path, report: Report) -> Leaf | None:
    values = _parse_values(value, item, path, report, many=False)
    return IsIn(item.id, values) if values is not None else None


def _parse_in(value: object, item: Item, path: Path, report: Report) -> Leaf | None:
    values = _parse_values(value, item, path, report, many=True)
    return IsIn(item.id, values) if values is not None else None


def _parse_options(value: object, item: Item, path: Path, report: Report) -> frozenset[str] | None:
    if not isinstance(item, MultiChoiceItem):
        report(
            path, f"item {item.id!r} is {item.type}: contains_any/contains_none need multi_choice"
        )
        return None
    if not isinstance(value, list) or not value:
        report(path, "needs a non-empty list of option values")
        return None
    options = {option.value for option in item.options}
    bad = [one for one in value if one not in options]
    if bad:
        report(path, f"{bad} not among the options of {item.id!r}: {', '.join(sorted(options))}")
        return None
    return frozenset(value)


def _parse_contains_any(value: object, item: Item, path: Path, report: Report) -> Leaf | None:
    values = _parse_options(value, item, path, report)
    return ContainsAny(item.id, values) if values is not None else None


def _parse_contains_none(value: object, item: Item, path: Path, report: Report) -> Leaf | None:
    values = _parse_options(value, item, path, report)
    return ContainsNone(item.id, values) if values is not None else None


def _parse_days(
    value: object, item: Item, path: Path, report: Report, *, minimum: int
) -> int | None:
    if not isinstance(item, DateItem):
        report(path, f"item {item.id!r} is {item.type}: this comparison needs a date item")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        report(path, f"needs a whole number of at least {minimum}")
        return None
    return value


def _parse_within_days(value: object, item: Item, path: Path, report: Report) -> Leaf | None:
    days = _parse_days(value, item, path, report, minimum=0)
    return WithinDays(item.id, days) if days is not None else None


def _parse_age_below(value: object, item: Item, path: Path, report: Report) -> Leaf | None:
    years = _parse_days(value, item, path, report, minimum=1)
    return AgeBelow(item.id, years) if years is not None else None


def _parse_bounds(raw: dict[str, Any], item: Item, path: Path, report: Report) -> Leaf | None:
    if not isinstance(item, IntegerItem):
        report(path, f"item {item.id!r} is {item.type}: numeric comparisons need an integer item")
        return None
    bounds: dict[str, int] = {}
    for key in _BOUND_KEYS:
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int):
                report((*path, key), f"`{key}` needs a whole number, not {type(value).__name__}")
                return None
            bounds[key] = value
    lows = [bounds[k] + (k == "above") for k in ("at_least", "above") if k in bounds]
    highs = [bounds[k] + (k == "at_most") for k in ("at_most", "below") if k in bounds]
    return Bounds(item.id, max(lows) if lows else None, min(highs) if highs else None)


_LEAF_PARSERS: dict[str, Callable[[object, Item, Path, Report], Leaf | None]] = {
    "is": _parse_is,
    "in": _parse_in,
    "contains_any": _parse_contains_any,
    "contains_none": _parse_contains_none,
    "within_days": _parse_within_days,
    "age_below": _parse_age_below,
}
