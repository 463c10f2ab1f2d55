"""FHIRPath enable-when expressions that keep our three-valued rule (SDC enableWhenExpression).

FHIR's ``enableWhen`` is two-valued: ``question = answer`` is false when the question is
unanswered. Ours is three-valued (DESIGN.md "Three-valued logic", POLICY-V2.md 1.2): an item is
disabled only when its enable_when is *definitely* false, so an unanswered or "unsure" gate
keeps the follow-up enabled. Each condition is therefore compiled into two FHIRPath booleans
that are never empty, "definitely true" and "definitely false", and an item is enabled when
its condition is not definitely false. The expressions read the QuestionnaireResponse as
``%resource``, where a renderer keeps no answers of disabled items.
"""

from app.engine import Ruleset
from app.engine.conditions import AllOf, AnyOf, Leaf, Node, Not
from app.engine.leaves import Bounds, ContainsAny, ContainsNone, IsIn
from app.engine.model import IntegerItem

FHIRPATH = "text/fhirpath"


class UnsupportedCondition(ValueError):
    """An enable_when comparison that has no FHIRPath form here (dates against the as-of)."""


def enable_expression(ruleset: Ruleset, item_id: str) -> str | None:
    """The FHIRPath that is true exactly when ``item_id`` is enabled; None if always enabled.

    Raises:
        UnsupportedCondition: if the enable_when compares dates (within_days, age_below).
    """
    node = ruleset.items[item_id].enable_when
    if node is None:
        return None
    return f"({_false(ruleset, node)}).not()"


def _answers(item_id: str) -> str:
    return f"%resource.repeat(item).where(linkId='{item_id}').answer"


def _literal(value: object) -> str:
    return str(value) if isinstance(value, int) else f"'{value}'"


def _match(ruleset: Ruleset, leaf: IsIn | ContainsAny | ContainsNone) -> str:
    """A ``where`` criterion on an answer's value: it is one of the leaf's values."""
    values = " | ".join(_literal(value) for value in sorted(leaf.values, key=str))
    if isinstance(ruleset.items[leaf.item].item, IntegerItem):
        return f"$this in ({values})"
    return f"code in ({values})"


def _hit(ruleset: Ruleset, leaf: IsIn | ContainsAny | ContainsNone) -> str:
    """Some answer is one of the leaf's values."""
    return f"{_answers(leaf.item)}.value.where({_match(ruleset, leaf)}).exists()"


def _miss(ruleset: Ruleset, leaf: IsIn | ContainsAny | ContainsNone) -> str:
    """Answered, with none of the leaf's values and no "unsure" (which would be unknown)."""
    answers = _answers(leaf.item)
    if isinstance(ruleset.items[leaf.item].item, IntegerItem):
        return f"({answers}.exists() and {answers}.value.where({_match(ruleset, leaf)}).empty())"
    unsure = f"{answers}.value.where({_match(ruleset, leaf)} or code = 'unsure').empty()"
    return f"({answers}.exists() and {unsure})"


def _bounded(leaf: Bounds) -> str:
    parts = []
    if leaf.low is not None:
        parts.append(f"$this >= {leaf.low}")
    if leaf.high is not None:
        parts.append(f"$this < {leaf.high}")
    return " and ".join(parts) or "true"


def _leaf_true(ruleset: Ruleset, leaf: Leaf) -> str:
    if isinstance(leaf, IsIn | ContainsAny):
        return _hit(ruleset, leaf)
    if isinstance(leaf, ContainsNone):
        return _miss(ruleset, leaf)
    if isinstance(leaf, Bounds):
        return f"{_answers(leaf.item)}.value.where({_bounded(leaf)}).exists()"
    raise UnsupportedCondition(f"{type(leaf).__name__} on {leaf.item} has no FHIRPath form")


def _leaf_false_answered(ruleset: Ruleset, leaf: Leaf) -> str:
    if isinstance(leaf, IsIn | ContainsAny):
        return _miss(ruleset, leaf)
    if isinstance(leaf, ContainsNone):
        return _hit(ruleset, leaf)
    if isinstance(leaf, Bounds):
        answers = _answers(leaf.item)
        return f"({answers}.exists() and {answers}.value.where({_bounded(leaf)}).empty())"
    raise UnsupportedCondition(f"{type(leaf).__name__} on {leaf.item} has no FHIRPath form")


def _true(ruleset: Ruleset, node: Node) -> str:
    """FHIRPath that is true when ``node`` is definitely true, else false (never empty)."""
    if isinstance(node, Leaf):
        # A disabled item has no answer in the response, so "some answer matches" is false.
        return _leaf_true(ruleset, node)
    if isinstance(node, Not):
        return _false(ruleset, node.part)
    joiner = " or " if isinstance(node, AnyOf) else " and "
    return "(" + joiner.join(_true(ruleset, part) for part in node.parts) + ")"


def _false(ruleset: Ruleset, node: Node) -> str:
    """FHIRPath that is true when ``node`` is definitely false, else false (never empty)."""
    if isinstance(node, Leaf):
        answered = _leaf_false_answered(ruleset, node)
        gate = ruleset.items[node.item].enable_when
        if gate is None:
            return answered
        # Policy: a comparison on a disabled question is false, not unknown.
        return f"({answered} or {_false(ruleset, gate)})"
    if isinstance(node, Not):
        return _true(ruleset, node.part)
    joiner = " and " if isinstance(node, AnyOf) else " or "
    assert isinstance(node, AnyOf | AllOf)
    return "(" + joiner.join(_false(ruleset, part) for part in node.parts) + ")"
