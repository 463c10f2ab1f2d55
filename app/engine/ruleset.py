"""A loaded rule pack: the questionnaire and rules with their conditions compiled once."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from app.engine.conditions import DISABLED, MISSING, UNSURE, Leaf, Node, State, Test, leaves_of
from app.engine.logic import FALSE, TRUE
from app.engine.model import Item, Questionnaire, Rule
from app.engine.result import Evidence, RulesetRef, RuleStatus, Severity


@dataclass(frozen=True, slots=True, eq=False)
class CompiledItem:
    """A questionnaire item with its enable_when compiled (None: always enabled)."""

    item: Item
    enable_when: Node | None
    is_enabled: Test | None


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """A rule compiled for the hot path.

    Each leaf comparison is a closure giving the leaf's state (see `Leaf.compile_state`).
    A rule's status and the leaves that decided it depend only on the vector of its leaves'
    states, so `resolve` memoises them per vector: at most 5**leaves entries per rule,
    capped at `_MEMO_LIMIT`, each filled on first use by walking the parsed condition once.
    """

    rule: Rule
    index: int
    severity: Severity
    node: Node
    controllers: Mapping[str, tuple[str, ...]]
    id: str = field(init=False)
    title: str = field(init=False)
    states: Callable[[State, date], tuple[int, ...]] = field(init=False)
    memo: dict[tuple[int, ...], "Resolution"] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", self.rule.id)
        object.__setattr__(self, "title", self.rule.title)
        leaf_states = tuple(leaf.compile_state() for leaf in leaves_of(self.node))
        object.__setattr__(self, "states", _vector(leaf_states))
        object.__setattr__(self, "memo", {})

    def resolve(self, state: State, as_of: date) -> "Resolution":
        """Return the rule's status, its deciding leaves, and (when fixed) its evidence."""
        key = self.states(state, as_of)
        found = self.memo.get(key)
        if found is None:
            found = self._explain(state, as_of)
            if len(self.memo) < _MEMO_LIMIT:
                self.memo[key] = found
        return found

    def _explain(self, state: State, as_of: date) -> "Resolution":
        truth, leaves = self.node.explain(state, as_of)
        first_per_item: dict[str, Leaf] = {}
        for leaf in leaves:
            first_per_item.setdefault(leaf.item, leaf)
        deciding = tuple(first_per_item.values())
        # A question that does not apply is never evidence itself; the answers that made it
        # not apply are (e.g. sex_at_birth for pregnant), so a rule that fires through a
        # `not` on a disabled question still names what decided it.
        items: dict[str, None] = {}
        for leaf in deciding:
            if state[leaf.item] is not DISABLED:
                items[leaf.item] = None
                continue
            for controller in self.controllers.get(leaf.item, ()):
                if state[controller] is not DISABLED:
                    items[controller] = None
        evidence = None
        if all(state[item] is MISSING or state[item] is UNSURE for item in items):
            # Unanswered and unsure items have a fixed answer (null, "unsure"): the evidence
            # is then the same for every answer set with these leaf states.
            evidence = tuple(
                Evidence(item, None if state[item] is MISSING else "unsure") for item in items
            )
        status = {TRUE: RuleStatus.fired, FALSE: RuleStatus.clear}.get(truth, RuleStatus.unknown)
        return Resolution(status, deciding, tuple(items), evidence)


_MEMO_LIMIT = 4096
LeafState = Callable[[State, date], int]


def _vector(leaf_states: tuple[LeafState, ...]) -> Callable[[State, date], tuple[int, ...]]:
    """Return one closure computing every leaf's state (unrolled for the common sizes)."""
    if len(leaf_states) == 1:
        (a,) = leaf_states
        return lambda state, as_of: (a(state, as_of),)
    if len(leaf_states) == 2:
        a, b = leaf_states
        return lambda state, as_of: (a(state, as_of), b(state, as_of))
    return lambda state, as_of: tuple([leaf_state(state, as_of) for leaf_state in leaf_states])


class Resolution(NamedTuple):
    """A rule's status, what decided it, and its evidence when the leaf states alone fix it.

    ``leaves`` are the deciding comparisons (for the reason text), ``items`` the evidence
    items: the deciding items that apply, and for those that do not, the answers that
    disabled them.
    """

    status: RuleStatus
    leaves: tuple[Leaf, ...]
    items: tuple[str, ...]
    evidence: tuple[Evidence, ...] | None


@dataclass(frozen=True, slots=True, eq=False)
class Ruleset:
    """A validated, compiled rule pack. Build it with `load_ruleset` or `ruleset_from_document`.

    Attributes:
        ref: id, version and sha256 of the pack, as named in every result.
        questionnaire: the questionnaire model (groups and items in display order).
        items: every item by id, in an order where each item follows the items its
            enable_when and not_before read.
        rules: the rules in pack order.
        tests_as_of: the default as-of date of the embedded rule tests.
        document: the canonical JSON-ready content of the whole pack.
        canonical_json: the bytes the sha256 is computed over.
    """

    ref: RulesetRef
    title: str
    questionnaire: Questionnaire
    items: dict[str, CompiledItem]
    rules: tuple[CompiledRule, ...]
    tests_as_of: date
    document: dict[str, Any]
    canonical_json: bytes

    @property
    def id(self) -> str:
        """The pack id, e.g. ``ketamine-infusion``."""
        return self.ref.id

    @property
    def version(self) -> str:
        """The pack's human version."""
        return self.ref.version

    @property
    def sha256(self) -> str:
        """The sha256 of the canonical content: the exact rules used."""
        return self.ref.sha256
