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

State = Mapping[str, object]
Test = Callable[[State, date], Truth]
Path = tuple[int | str, ...]


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

TRUTH_OF_STATE: Final = {0: FALSE, 1: TRUE, 4: UNKNOWN}
"""The truth of an answered leaf state (see ``Leaf.answered``)."""
UNSURE_OPTION: Final = "unsure"
"""The reserved option "I'm not sure" (policy v2 section 1): unknown in any item type."""
NONE_OPTION: Final = "none"
"""The reserved, exclusive checklist option "None of these" (policy v2 section 1.2)."""


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

    def answered(self, value: Any, as_of: date) -> int:
        """The leaf state of an answered value: 1 true, 0 false, 4 unknown.

        Unknown is for an answer that leaves the comparison open (a checklist holding
        "unsure", policy v2 section 1.2); by default an answered value decides.
        """
        return 1 if self.holds(value, as_of) else 0

    def compile(self) -> Test:
        """Return a closure computing this leaf's truth from an answer state."""
        item, answered = self.item, self.answered

        def test(state: State, as_of: date) -> Truth:
            value = state[item]
            if value is DISABLED:
                return FALSE
            if value is MISSING or value is UNSURE:
                return UNKNOWN
            return TRUTH_OF_STATE[answered(value, as_of)]

        return test

    def compile_state(self) -> Callable[[State, date], int]:
        """Return a closure giving this leaf's state.

        0 false, 1 true, 2 unanswered, 3 disabled, 4 unsure: unanswered and unsure are both
        unknown, kept apart so that the evidence of an unknown rule is known from the states.
        """
        item, answered = self.item, self.answered

        def leaf_state(state: State, as_of: date) -> int:
            value = state[item]
            if value is DISABLED:
                return 3
            if value is MISSING or value is UNSURE:
                return 2 if value is MISSING else 4
            return answered(value, as_of)

        return leaf_state

    def truth(self, state: State, as_of: date) -> Truth:
        """Return this leaf's truth for an answer state (the slow path, for explanations)."""
        value = state[self.item]
        if value is DISABLED:
            return FALSE
        if value is MISSING or value is UNSURE:
            return UNKNOWN
        return TRUTH_OF_STATE[self.answered(value, as_of)]

    def explain(self, state: State, as_of: date) -> tuple[Truth, list["Leaf"]]:
        """Return this leaf's truth and itself as the evidence."""
        return self.truth(state, as_of), [self]

    def item_ids(self) -> Iterator[str]:
        """Yield the item this leaf reads."""
        yield self.item


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
