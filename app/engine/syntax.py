"""Parse and type-check condition mappings from YAML into condition nodes."""

from collections.abc import Callable, Mapping
from typing import Any

from app.engine.conditions import NONE_OPTION, UNSURE_OPTION, AllOf, AnyOf, Leaf, Node, Not, Path
from app.engine.leaves import AgeBelow, Bounds, ContainsAny, ContainsNone, IsIn, WithinDays
from app.engine.model import DateItem, IntegerItem, Item, MultiChoiceItem

Report = Callable[[Path, str], None]

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
        # A listed "unsure" is unknown (policy v2 section 1.1): never a value to compare with.
        allowed = tuple(option.value for option in item.options if option.value != UNSURE_OPTION)
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
    reserved = [one for one in value if one in (NONE_OPTION, UNSURE_OPTION)]
    if reserved:
        report(
            path,
            f'{reserved[0]!r} is a reserved option, not a condition: "none" and "unsure" '
            "are read by the three-valued comparison itself (docs/rules.md)",
        )
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
