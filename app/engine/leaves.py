"""The leaf comparisons of a condition: is/in, numeric bounds, checklists, date windows, ages.

Each leaf reads one item. DESIGN.md "Three-valued logic": a comparison on a disabled item is
false, on an enabled item that is unanswered or "unsure" unknown. Checklists follow policy v2
section 1.2 (a list holding "unsure" leaves the listed options unknown).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.engine.conditions import (
    DISABLED,
    MISSING,
    UNSURE,
    UNSURE_OPTION,
    Leaf,
    State,
    Test,
    age_on,
)
from app.engine.logic import FALSE, TRUE, UNKNOWN, Truth


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

    def compile_state(self) -> Callable[[State, date], int]:  # noqa: D102 - hot path
        item, values = self.item, self.values

        def leaf_state(state: State, as_of: date) -> int:
            value = state[item]
            if value is DISABLED:
                return 3
            if value is MISSING:
                return 2
            if value is UNSURE:
                return 4
            return 1 if value in values else 0

        return leaf_state

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

    def compile_state(self) -> Callable[[State, date], int]:  # noqa: D102 - hot path
        item = self.item
        low = self.low if self.low is not None else float("-inf")
        high = self.high if self.high is not None else float("inf")

        def leaf_state(state: State, as_of: date) -> int:
            value = state[item]
            if value is DISABLED:
                return 3
            if value is MISSING:  # integers are never "unsure"
                return 2
            return 1 if low <= value < high else 0  # type: ignore[operator]

        return leaf_state

    def describe(self, value: Any, as_of: date) -> str:  # noqa: D102
        if self.high is None:
            bound = f"{self.low} or more"
        elif self.low is None:
            bound = f"{self.high - 1} or less"
        else:
            bound = f"{self.low} to {self.high - 1}"
        return f"{self.item} is {value} ({bound})"


class _Checklist(Leaf):
    """A three-valued comparison on a list answer that may hold the option "unsure".

    Policy v2 section 1.2: a ticked listed option decides (true for ``contains_any``) even
    beside "unsure"; otherwise "unsure" in the list leaves the listed options not ruled out
    (unknown); otherwise the list is definite. v1's ``conditions`` has no "unsure" option,
    so for it these comparisons are two-valued exactly as before.
    """

    __slots__ = ()
    values: frozenset[str]
    is_negated = False

    def answered(self, value: Any, as_of: date) -> int:
        if not self.values.isdisjoint(value):
            return 0 if self.is_negated else 1
        if UNSURE_OPTION in value:
            return 4  # the listed options are neither ticked nor ruled out
        return 1 if self.is_negated else 0

    def holds(self, value: Any, as_of: date) -> bool:
        return self.answered(value, as_of) == 1

    def describe(self, value: Any, as_of: date) -> str:
        hits = sorted(self.values.intersection(value))
        if hits:
            return f"{self.item} includes {', '.join(hits)}"
        if UNSURE_OPTION in value:
            return f'{self.item} is "unsure" about {_list(self.values)}'
        return f"{self.item} includes none of {_list(self.values)}"


@dataclass(frozen=True, slots=True)
class ContainsAny(_Checklist):
    """``contains_any``: at least one selected option is listed (three-valued, see above)."""

    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class ContainsNone(_Checklist):
    """``contains_none``: no selected option is listed (the negation of ``contains_any``)."""

    values: frozenset[str]
    is_negated = True


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


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _list(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))
