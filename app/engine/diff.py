"""What changed between two rule packs, in lines a physician can read.

Works on the packs' canonical documents (``Ruleset.document``), so a pack on disk and a pack
stored by hash compare alike. Reported: rules added and removed; a rule's severity, title,
rationale, references and tests; its condition, as threshold changes ("systolic_bp at_least
160 → 150") when the condition keeps its shape, else the whole condition before and after;
items added, removed, re-worded, re-typed, re-ranged, re-gated or with changed options; the
pack's identity and rule order; and, when given, translations added, removed or changed.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.engine.result import RulesetRef
from app.engine.ruleset import Ruleset
from app.engine.translations import Catalogue

_OPS = {
    "is": "is",
    "in": "is one of",
    "contains_any": "includes any of",
    "contains_none": "includes none of",
    "within_days": "is within days before the as-of date:",
    "age_below": "gives an age under",
    "at_least": "at_least",
    "above": "above",
    "at_most": "at_most",
    "below": "below",
}
_ITEM_TEXTS = ("text", "help", "why")
_ITEM_SETTINGS = ("type", "unit", "min", "max", "min_selected", "required", "not_before")


@dataclass(frozen=True, slots=True)
class Change:
    """One difference: its kind, what it is about, the values before and after, and a line."""

    kind: str
    subject: str
    before: Any
    after: Any
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Return the change as JSON-ready data."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "before": self.before,
            "after": self.after,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class PackDiff:
    """Every change from ``old`` to ``new``, rules first, then items, then translations."""

    old: RulesetRef
    new: RulesetRef
    changes: tuple[Change, ...]

    @property
    def is_empty(self) -> bool:
        """Whether the two packs have the same content (translations included, if given)."""
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        """Return the diff as JSON-ready data (``rules diff --json``)."""
        return {
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "changes": [change.to_dict() for change in self.changes],
        }

    def lines(self) -> list[str]:
        """The diff as text, one change a line."""
        head = f"{self.old.id} {self.old.version} ({self.old.sha256[:12]})"
        head += f" → {self.new.id} {self.new.version} ({self.new.sha256[:12]})"
        return [head, *(f"  {c.text}" for c in self.changes)] if self.changes else [head, "  same"]


def diff_rulesets(
    old: Ruleset,
    new: Ruleset,
    *,
    old_translations: Mapping[str, Catalogue] | None = None,
    new_translations: Mapping[str, Catalogue] | None = None,
) -> PackDiff:
    """Compare two rule packs (and their translations, when both are given)."""
    changes = [
        *_pack_changes(old.document["pack"], new.document["pack"]),
        *_rule_changes(old.document["rules"], new.document["rules"]),
        *_item_changes(old.document["questionnaire"], new.document["questionnaire"]),
    ]
    if old_translations is not None and new_translations is not None:
        changes.extend(_translation_changes(old_translations, new_translations))
    return PackDiff(old.ref, new.ref, tuple(changes))


def describe_condition(raw: Any) -> str:
    """A condition in words: ``systolic_bp at_least 160 or (hypertension is "yes" and ...)``."""
    if isinstance(raw, dict) and ("any" in raw or "all" in raw):
        key = "any" if "any" in raw else "all"
        joiner = " or " if key == "any" else " and "
        parts = [describe_condition(part) for part in raw[key]]
        return joiner.join(
            f"({part})" if " or " in part or " and " in part else part for part in parts
        )
    if isinstance(raw, dict) and "not" in raw:
        return f"not ({describe_condition(raw['not'])})"
    item = raw.get("item")  # a validated leaf: the item and its comparisons
    return " and ".join(
        f"{item} {_OPS.get(op, op)} {_value(value)}" for op, value in raw.items() if op != "item"
    )


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_value(one) for one in value)
    return f'"{value}"' if isinstance(value, str) and value in ("yes", "no") else str(value)


def _pack_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for key in ("id", "version", "title", "tests_as_of"):
        if old.get(key) != new.get(key):
            text = f"pack {key}: {old.get(key)} → {new.get(key)}"
            yield Change(f"pack_{key}", "pack", old.get(key), new.get(key), text)
    kept = [rule for rule in old.get("rules", []) if rule in new.get("rules", [])]
    order = [rule for rule in new.get("rules", []) if rule in kept]
    if kept != order:
        yield Change("rule_order", "pack", kept, order, "rule order changed: " + ", ".join(order))


def _rule_changes(old: list[Any], new: list[Any]) -> Iterator[Change]:
    before = {rule["id"]: rule for rule in old}
    after = {rule["id"]: rule for rule in new}
    for rule_id, rule in after.items():
        if rule_id not in before:
            text = f"rule added: {rule_id} ({rule['severity']}): {describe_condition(rule['when'])}"
            yield Change("rule_added", rule_id, None, rule["severity"], text)
    for rule_id, rule in before.items():
        if rule_id not in after:
            text = f"rule removed: {rule_id} ({rule['severity']})"
            yield Change("rule_removed", rule_id, rule["severity"], None, text)
    for rule_id, rule in after.items():
        if rule_id in before:
            yield from _one_rule(rule_id, before[rule_id], rule)


def _one_rule(rule_id: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for key in ("severity", "title"):
        if old[key] != new[key]:
            text = f"{rule_id}: {key} {old[key]} → {new[key]}"
            yield Change(f"rule_{key}", rule_id, old[key], new[key], text)
    yield from _condition_changes(rule_id, old["when"], new["when"])
    if old["rationale"] != new["rationale"]:
        yield Change("rule_rationale", rule_id, old["rationale"], new["rationale"],
                     f"{rule_id}: rationale re-worded")  # fmt: skip
    if old["references"] != new["references"]:
        yield Change("rule_references", rule_id, old["references"], new["references"],
                     f"{rule_id}: references changed")  # fmt: skip
    if old["tests"] != new["tests"]:
        text = f"{rule_id}: tests changed ({len(old['tests'])} → {len(new['tests'])})"
        yield Change("rule_tests", rule_id, len(old["tests"]), len(new["tests"]), text)


def _condition_changes(rule_id: str, old: Any, new: Any) -> Iterator[Change]:
    if old == new:
        return
    if _shape(old) == _shape(new):
        for (item, op, before), (_, _, after) in zip(_leaves(old), _leaves(new), strict=True):
            if before != after:
                text = f"{rule_id}: {item} {op} {_value(before)} → {_value(after)}"
                yield Change("rule_threshold", f"{rule_id}.{item}", before, after, text)
        return
    text = f"{rule_id}: condition {describe_condition(old)} → {describe_condition(new)}"
    yield Change("rule_condition", rule_id, old, new, text)


def _shape(raw: Any) -> Any:
    """The condition without its values: what must match for a value-by-value comparison."""
    if isinstance(raw, dict) and ("any" in raw or "all" in raw):
        key = "any" if "any" in raw else "all"
        return (key, tuple(_shape(part) for part in raw[key]))
    if isinstance(raw, dict) and "not" in raw:
        return ("not", _shape(raw["not"]))
    return ("leaf", raw.get("item"), tuple(sorted(op for op in raw if op != "item")))


def _leaves(raw: Any) -> Iterator[tuple[str, str, Any]]:
    if isinstance(raw, dict) and ("any" in raw or "all" in raw):
        for part in raw["any" if "any" in raw else "all"]:
            yield from _leaves(part)
    elif isinstance(raw, dict) and "not" in raw:
        yield from _leaves(raw["not"])
    else:
        for op in sorted(op for op in raw if op != "item"):
            yield str(raw.get("item")), op, raw[op]


def _items(questionnaire: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for group in questionnaire["groups"] for item in group["items"]}


def _pages(questionnaire: Mapping[str, Any]) -> dict[str, str]:
    return {
        item["id"]: group["title"] for group in questionnaire["groups"] for item in group["items"]
    }


def _item_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    before, after = _items(old), _items(new)
    pages_before, pages_after = _pages(old), _pages(new)
    for item_id, page in pages_after.items():
        if item_id in pages_before and pages_before[item_id] != page:
            text = f"{item_id}: moved from the page {pages_before[item_id]!r} to {page!r}"
            yield Change("item_page", item_id, pages_before[item_id], page, text)
    for item_id, item in after.items():
        if item_id not in before:
            text = f"item added: {item_id} ({item['type']}): {item['text']}"
            yield Change("item_added", item_id, None, item["text"], text)
    for item_id in before:
        if item_id not in after:
            yield Change("item_removed", item_id, before[item_id]["text"], None,
                         f"item removed: {item_id}")  # fmt: skip
    for item_id, item in after.items():
        if item_id in before:
            yield from _one_item(item_id, before[item_id], item)


def _one_item(item_id: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for key in _ITEM_TEXTS:
        if old.get(key) != new.get(key):
            text = f"{item_id}: {key} re-worded: {old.get(key)!r} → {new.get(key)!r}"
            yield Change("item_reworded", f"{item_id}.{key}", old.get(key), new.get(key), text)
    for key in _ITEM_SETTINGS:
        if old.get(key) != new.get(key):
            text = f"{item_id}: {key} {old.get(key)} → {new.get(key)}"
            yield Change("item_setting", f"{item_id}.{key}", old.get(key), new.get(key), text)
    gates = old.get("enable_when"), new.get("enable_when")
    if gates[0] != gates[1]:
        shown = [describe_condition(gate) if gate else "always" for gate in gates]
        text = f"{item_id}: asked when {shown[0]} → {shown[1]}"
        yield Change("item_enable_when", item_id, gates[0], gates[1], text)
    yield from _option_changes(item_id, old.get("options", []), new.get("options", []))


def _option_changes(item_id: str, old: list[Any], new: list[Any]) -> Iterator[Change]:
    before = {option["value"]: option["text"] for option in old}
    after = {option["value"]: option["text"] for option in new}
    for value, label in after.items():
        if value not in before:
            yield Change("option_added", f"{item_id}.{value}", None, label,
                         f"{item_id}: option added: {value} ({label!r})")  # fmt: skip
        elif before[value] != label:
            text = f"{item_id}: option {value} re-worded: {before[value]!r} → {label!r}"
            yield Change("option_reworded", f"{item_id}.{value}", before[value], label, text)
    for value, label in before.items():
        if value not in after:
            yield Change("option_removed", f"{item_id}.{value}", label, None,
                         f"{item_id}: option removed: {value}")  # fmt: skip


def _translation_changes(
    old: Mapping[str, Catalogue], new: Mapping[str, Catalogue]
) -> Iterator[Change]:
    for language in sorted(set(old) | set(new)):
        before = {k: e.text for k, e in old[language].entries.items()} if language in old else {}
        after = {k: e.text for k, e in new[language].entries.items()} if language in new else {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                what = (
                    "added" if key not in before else "removed" if key not in after else "changed"
                )
                text = f"translation {language} {key} {what}"
                yield Change(f"translation_{what}", f"{language}:{key}", before.get(key),
                             after.get(key), text)  # fmt: skip
