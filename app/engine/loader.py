"""Load a rule pack directory (or a stored pack document) into a validated, compiled Ruleset.

Every problem is collected and reported together, each as ``file:line: where: what``: YAML
syntax, unknown keys, duplicate ids, conditions on unknown items or of the wrong type,
enable_when cycles, and rules without tests.
"""

import functools
import hashlib
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from app.engine import conditions, syntax
from app.engine.errors import RulesetError
from app.engine.model import DateItem, IntegerItem, Item, Pack, Questionnaire, Rule
from app.engine.result import RulesetRef, Severity
from app.engine.ruleset import CompiledItem, CompiledRule, Ruleset
from app.engine.yamlsource import Source, parse_yaml, plain_source

M = TypeVar("M", bound=BaseModel)
_ITEM_TYPES = {"yes_no", "yes_no_unsure", "choice", "multi_choice", "integer", "date"}


class _Problems(list[str]):
    def add(self, source: Source, path: conditions.Path, message: str) -> None:
        where = ".".join(str(step) if isinstance(step, str) else f"[{step}]" for step in path)
        self.append(
            f"{source.where(path)}: {where.replace('.[', '[')}: {message}"
            if where
            else f"{source.where(path)}: {message}"
        )


def load_ruleset(path: Path | str) -> Ruleset:
    """Load and validate the rule pack in a directory.

    Every file that parses is checked even when another does not, so one mistake never
    hides the others.

    Args:
        path: the pack directory, holding ``pack.yaml``, the questionnaire and ``rules/``.

    Raises:
        RulesetError: listing every problem found.
    """
    root = Path(path)
    problems = _Problems()
    pack_source = _read(root, "pack.yaml", problems)
    pack = _model(Pack, pack_source, problems) if pack_source else None
    if pack is None or pack_source is None:
        raise RulesetError(problems or [f"{root}: not a rule pack"])
    questionnaire_source = _read(root, pack.questionnaire, problems)
    rule_sources: list[tuple[str | None, Source | None]] = [
        (rule_id, _read(root, f"rules/{rule_id}.yaml", problems)) for rule_id in pack.rules
    ]
    listed = {f"{rule_id}.yaml" for rule_id in pack.rules}
    for stray in sorted((root / "rules").glob("*.y*ml")):
        if stray.name not in listed:
            problems.append(f"rules/{stray.name}: not listed under `rules` in pack.yaml")
    return _build(pack_source, questionnaire_source, rule_sources, problems)


def ruleset_from_document(document: Mapping[str, Any]) -> Ruleset:
    """Rebuild a Ruleset from its stored canonical document (``Ruleset.document``).

    Raises:
        RulesetError: if the document is not a valid pack.
    """
    rules = document.get("rules")
    return _build(
        plain_source("pack", document.get("pack")),
        plain_source("questionnaire", document.get("questionnaire")),
        [(None, plain_source(f"rules[{i}]", rule)) for i, rule in enumerate(rules or [])],
        _Problems(),
    )


def _read(root: Path, name: str, problems: _Problems) -> Source | None:
    try:
        return parse_yaml((root / name).read_text(encoding="utf-8"), name)
    except FileNotFoundError:
        problems.append(f"{name}: file not found in {root}")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"{name}: cannot read: {error}")
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        detail = getattr(error, "problem", None) or str(error)
        problems.append(f"{name}{line}: invalid YAML: {detail}")
    return None


def _model(model: type[M], source: Source, problems: _Problems) -> M | None:
    try:
        return model.model_validate(source.data)
    except ValidationError as error:
        for detail in error.errors():
            path = tuple(step for step in detail["loc"] if step not in _ITEM_TYPES)
            if detail["type"] == "extra_forbidden":
                message = f"unknown key {path[-1]!r}"
            elif detail["type"] == "missing":
                message = f"missing required key {path[-1]!r}"
            else:
                message = detail["msg"]
            problems.add(source, path, message)
        return None


def _build(
    pack_source: Source,
    questionnaire_source: Source | None,
    rule_sources: list[tuple[str | None, Source | None]],
    problems: _Problems,
) -> Ruleset:
    pack = _model(Pack, pack_source, problems)
    questionnaire = (
        _model(Questionnaire, questionnaire_source, problems) if questionnaire_source else None
    )
    rules = [
        (listed, source, _rule_model(source, problems) if source else None)
        for listed, source in rule_sources
    ]
    items = (
        _check_items(questionnaire, questionnaire_source, problems)
        if questionnaire and questionnaire_source
        else None
    )
    ordered = (
        _order_items(questionnaire, items, questionnaire_source, problems)
        if questionnaire and questionnaire_source and items is not None
        else {}
    )
    compiled_rules = _compile_rules(rules, items, ordered, problems) if items is not None else []
    tests_as_of = _date(pack.tests_as_of, pack_source, ("tests_as_of",), problems) if pack else None
    if problems or pack is None or questionnaire is None or tests_as_of is None:
        raise RulesetError(problems)
    document = {
        "pack": pack_source.data,
        "questionnaire": questionnaire_source.data if questionnaire_source else None,
        "rules": [source.data for _, source in rule_sources if source],
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    canonical_json = canonical.encode("utf-8")
    ref = RulesetRef(pack.id, pack.version, hashlib.sha256(canonical_json).hexdigest())
    return Ruleset(
        ref,
        pack.title,
        questionnaire,
        ordered,
        tuple(compiled_rules),
        tests_as_of,
        json.loads(canonical),
        canonical_json,
    )


def _rule_model(source: Source, problems: _Problems) -> Rule | None:
    if isinstance(source.data, dict) and not source.data.get("tests"):
        problems.add(source, ("id",), "rule has no tests: add fired, clear and unknown cases")
        return None
    return _model(Rule, source, problems)


def _date(text: str, source: Source, path: conditions.Path, problems: _Problems) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.add(source, path, "not a real calendar date (YYYY-MM-DD)")
        return None


def _check_items(
    questionnaire: Questionnaire, source: Source, problems: _Problems
) -> dict[str, tuple[Item, conditions.Path]]:
    items: dict[str, tuple[Item, conditions.Path]] = {}
    group_ids: set[str] = set()
    for g, group in enumerate(questionnaire.groups):
        if group.id in group_ids:
            problems.add(source, ("groups", g, "id"), f"duplicate group id {group.id!r}")
        group_ids.add(group.id)
        for i, item in enumerate(group.items):
            path: conditions.Path = ("groups", g, "items", i)
            if item.id in items:
                problems.add(source, (*path, "id"), f"duplicate item id {item.id!r}")
            items[item.id] = (item, path)
            _check_item(item, path, source, problems)
    by_id = {item_id: item for item_id, (item, _) in items.items()}
    for item, path in items.values():
        if isinstance(item, DateItem) and item.not_before is not None:
            other = by_id.get(item.not_before)
            if not isinstance(other, DateItem):
                problems.add(
                    source,
                    (*path, "not_before"),
                    f"not_before must name a date item, not {item.not_before!r}",
                )
        if item.enable_when is not None:
            syntax.parse(
                item.enable_when,
                by_id,
                (*path, "enable_when"),
                functools.partial(problems.add, source),
            )
    return items


def _check_item(item: Item, path: conditions.Path, source: Source, problems: _Problems) -> None:
    options = getattr(item, "options", ())
    if len({option.value for option in options}) != len(options):
        problems.add(source, (*path, "options"), "duplicate option values")
    if isinstance(item, IntegerItem) and item.min > item.max:
        problems.add(source, (*path, "min"), "min is greater than max")


def _compile_rules(
    rules: list[tuple[str | None, Source | None, Rule | None]],
    items: dict[str, tuple[Item, conditions.Path]],
    ordered: dict[str, CompiledItem],
    problems: _Problems,
) -> list[CompiledRule]:
    by_id = {item_id: item for item_id, (item, _) in items.items()}
    # For each item with an enable_when, the items it reads: the evidence when it is disabled.
    controllers = {
        item_id: tuple(dict.fromkeys(compiled.enable_when.item_ids()))
        for item_id, compiled in ordered.items()
        if compiled.enable_when is not None
    }
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for index, (listed, source, rule) in enumerate(rules):
        if source is None:
            continue
        report = functools.partial(problems.add, source)
        if rule is None:
            # The rule's own keys are wrong; still check its condition, if it has one.
            if isinstance(source.data, dict) and "when" in source.data:
                syntax.parse(source.data["when"], by_id, ("when",), report)
            continue
        if rule.id in seen:
            problems.add(source, ("id",), f"duplicate rule id {rule.id!r}")
        seen.add(rule.id)
        if listed is not None and rule.id != listed:
            message = f"id {rule.id!r} does not match its listing {listed!r} in pack.yaml"
            problems.add(source, ("id",), message)
        node = syntax.parse(rule.when, by_id, ("when",), report)
        if node is not None:
            severity = Severity(rule.severity)
            compiled.append(CompiledRule(rule, index, severity, node, controllers))
    return compiled


def _order_items(
    questionnaire: Questionnaire,
    items: dict[str, tuple[Item, conditions.Path]],
    source: Source,
    problems: _Problems,
) -> dict[str, CompiledItem]:
    """Order items so each follows those its enable_when and not_before read; reject cycles."""
    by_id = {item_id: item for item_id, (item, _) in items.items()}
    nodes = {
        item.id: syntax.parse(item.enable_when, by_id, (), lambda *_: None)
        if item.enable_when is not None
        else None
        for item in questionnaire.items
    }
    depends = {
        item.id: {
            *(node.item_ids() if (node := nodes[item.id]) else ()),
            *([item.not_before] if isinstance(item, DateItem) and item.not_before else []),
        }
        for item in questionnaire.items
    }
    ordered: dict[str, CompiledItem] = {}
    visiting: list[str] = []

    def visit(item_id: str) -> bool:
        if item_id in ordered:
            return True
        if item_id in visiting:
            cycle = " -> ".join([*visiting[visiting.index(item_id) :], item_id])
            problems.add(source, (*items[item_id][1], "enable_when"), f"cycle: {cycle}")
            return False
        visiting.append(item_id)
        ok = all(visit(other) for other in sorted(depends[item_id]))
        visiting.pop()
        node = nodes[item_id]
        ordered[item_id] = CompiledItem(by_id[item_id], node, node.compile() if node else None)
        return ok

    for item in questionnaire.items:
        if not visit(item.id):
            break
    return ordered
