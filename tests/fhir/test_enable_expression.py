"""The exported enableWhenExpressions enable exactly the items our validator accepts.

An SDC renderer keeps no answers of disabled items and evaluates each enableWhenExpression
on the QuestionnaireResponse (``%resource``). For 1,000 generated answer sets, the items it
would enable must be exactly those our three-valued enable-when leaves enabled: an answer to
each is accepted, and an answer to any other is rejected as ``item_disabled``.
"""

import copy
import json
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.models import models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import AnswerErrors, Ruleset, ruleset_from_document, validate_answers
from app.engine.model import ChoiceItem, DateItem, IntegerItem, Item, MultiChoiceItem
from app.fhir import expression, questionnaire
from app.main import load_checked_ruleset
from app.settings import default_rules_path
from tests.fhir.support import response

AS_OF = date(2026, 6, 15)
RULESET = load_checked_ruleset(default_rules_path())
V1_RULESET = load_checked_ruleset(Path(default_rules_path()).parent / "ketamine-infusion-v1")
# Gates the default pack does not use, to check the compiler beyond single comparisons:
# `all`, `not`, integer bounds, `contains_none`, and a gate read from an item that is gated.
_COMPOSITE_GATES: dict[str, dict[str, Any]] = {
    "bp_controlled": {
        "all": [
            {"item": "hypertension", "is": "yes"},
            {"not": {"item": "systolic_bp", "at_least": 160}},
        ]
    },
    "concussion_date": {
        "any": [{"item": "concussion", "is": "yes"}, {"item": "ketamine_reaction", "is": "yes"}]
    },
    "thyroid_controlled": {
        "not": {"item": "other_medical_conditions", "contains_none": ["overactive_thyroid"]}
    },
}


def _composite() -> Ruleset:
    document = copy.deepcopy(RULESET.document)
    for group in document["questionnaire"]["groups"]:
        for item in group["items"]:
            if item["id"] in _COMPOSITE_GATES:
                item["enable_when"] = _COMPOSITE_GATES[item["id"]]
    return ruleset_from_document(document)


COMPOSITE = _composite()
_DATES = {"date_of_birth": "1980-05-01", "concussion_date": "2026-05-01"}


def _values(item: Item) -> st.SearchStrategy[Any]:
    if item.type == "yes_no":
        return st.sampled_from(["yes", "no"])
    if item.type == "yes_no_unsure":
        return st.sampled_from(["yes", "no", "unsure"])
    if isinstance(item, ChoiceItem):
        return st.sampled_from([option.value for option in item.options])
    if isinstance(item, MultiChoiceItem):
        options = [option.value for option in item.options]
        if "none" not in options:
            return st.lists(st.sampled_from(options), min_size=1, unique=True)
        ticked = [value for value in options if value != "none"]
        return st.just(["none"]) | st.lists(st.sampled_from(ticked), min_size=1, unique=True)
    if isinstance(item, IntegerItem):
        return st.integers(item.min, item.max)
    assert isinstance(item, DateItem)
    return st.just(_DATES.get(item.id, "2020-01-01"))


def _drawn(ruleset: Ruleset) -> st.SearchStrategy[dict[str, Any]]:
    # Each item: absent (None) or a valid value; gates are drawn often so follow-ups apply.
    return st.fixed_dictionaries(
        {i.id: st.none() | _values(i) for i in ruleset.questionnaire.items}
    ).map(lambda drawn: {key: value for key, value in drawn.items() if value is not None})


def _rendered(ruleset: Ruleset, drawn: dict[str, Any]) -> dict[str, Any]:
    """What a renderer submits: the drawn answers of the items enabled as it goes."""
    kept: dict[str, Any] = {}
    for item_id in ruleset.items:
        if item_id in drawn and validate_answers(ruleset, kept, as_of=AS_OF).applies(item_id):
            kept[item_id] = drawn[item_id]
    return kept


Compiled = Callable[[Mapping[str, Any], Mapping[str, Any] | None], list[Any]]


def _expressions(ruleset: Ruleset) -> dict[str, Compiled]:
    compiled = {}
    for item_id in ruleset.items:
        text = expression.enable_expression(ruleset, item_id)
        if text is not None:
            compiled[item_id] = compile_fhirpath(text, models["r4"])
    return compiled


def _exported_expressions(ruleset: Ruleset) -> dict[str, str]:
    document = questionnaire.export(ruleset, catalogues={}, base_url="http://testserver")
    found = {}
    for group in document["item"]:
        for item in group["item"]:
            for extension in item.get("extension", []):
                if extension["url"].endswith("sdc-questionnaire-enableWhenExpression"):
                    found[item["linkId"]] = extension["valueExpression"]["expression"]
    return found


@pytest.mark.parametrize("ruleset", [RULESET, V1_RULESET, COMPOSITE], ids=["v2", "v1", "composite"])
def test_exported_expressions_are_the_checked_ones(ruleset: Ruleset) -> None:
    exported = _exported_expressions(ruleset)
    gated = [item_id for item_id, item in ruleset.items.items() if item.enable_when is not None]
    assert sorted(exported) == sorted(gated)
    for item_id, text in exported.items():
        assert text == expression.enable_expression(ruleset, item_id)


def _sources(ruleset: Ruleset, item_id: str) -> tuple[str, ...]:
    """The items an item's expression reads: its gate's items and, in turn, their gates'."""
    node = ruleset.items[item_id].enable_when
    found: list[str] = []
    for source in [] if node is None else node.item_ids():
        found += [source, *_sources(ruleset, source)]
    return tuple(sorted(set(found)))


# fhirpathpy takes ~8 ms per expression on a whole response. An expression reads only the
# answers of its gate items (it names them by linkId), so its value is memoised per those
# answers; each distinct case is still evaluated once, on a whole response.
_MEMO: dict[tuple[str, str], bool] = {}


def _enabled_by_renderer(
    ruleset: Ruleset, compiled: Compiled, item_id: str, kept: dict[str, Any]
) -> bool:
    key = (item_id, json.dumps([kept.get(source) for source in _sources(ruleset, item_id)]))
    if key not in _MEMO:
        resource = response(ruleset, kept)
        _MEMO[key] = compiled(resource, {"resource": resource}) == [True]
    return _MEMO[key]


def _check(ruleset: Ruleset, compiled: dict[str, Compiled], drawn: dict[str, Any]) -> None:
    kept = _rendered(ruleset, drawn)
    accepted = validate_answers(ruleset, kept, as_of=AS_OF)  # raises if the validator disagrees
    by_renderer = {
        item_id
        for item_id in ruleset.items
        if item_id not in compiled
        or _enabled_by_renderer(ruleset, compiled[item_id], item_id, kept)
    }
    ours = {item_id for item_id in ruleset.items if accepted.applies(item_id)}
    assert by_renderer == ours
    for item_id in set(ruleset.items) - ours:
        value = drawn.get(item_id) or _example(ruleset.items[item_id].item)
        with pytest.raises(AnswerErrors) as raised:
            validate_answers(ruleset, kept | {item_id: value}, as_of=AS_OF)
        assert [(e.code, e.item) for e in raised.value.errors] == [("item_disabled", item_id)]


def _example(item: Item) -> Any:
    if isinstance(item, ChoiceItem | MultiChoiceItem):
        first = item.options[0].value
        return [first] if isinstance(item, MultiChoiceItem) else first
    if isinstance(item, IntegerItem):
        return item.min
    if isinstance(item, DateItem):
        return "2020-01-01"
    return "yes"


_COMPILED = _expressions(RULESET)
_V1_COMPILED = _expressions(V1_RULESET)
_COMPOSITE_COMPILED = _expressions(COMPOSITE)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=_drawn(RULESET))
def test_renderer_enables_exactly_what_we_accept_v2(drawn: dict[str, Any]) -> None:
    _check(RULESET, _COMPILED, drawn)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=_drawn(V1_RULESET))
def test_renderer_enables_exactly_what_we_accept_v1(drawn: dict[str, Any]) -> None:
    _check(V1_RULESET, _V1_COMPILED, drawn)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=_drawn(COMPOSITE))
def test_renderer_enables_exactly_what_we_accept_composite_gates(drawn: dict[str, Any]) -> None:
    _check(COMPOSITE, _COMPOSITE_COMPILED, drawn)


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ({}, True),  # unanswered gate: unknown, so the follow-up stays enabled
        ({"hypertension": "unsure"}, True),
        ({"hypertension": "yes"}, True),
        ({"hypertension": "no"}, False),
    ],
)
def test_unsure_or_missing_gate_keeps_the_follow_up_enabled(
    gate: dict[str, Any], expected: bool
) -> None:
    resource = response(RULESET, gate)
    assert _COMPILED["bp_controlled"](resource, {"resource": resource}) == [expected]


@pytest.mark.parametrize(
    ("history", "expected"),
    [(["none"], False), (["unsure"], True), (["aneurysm", "unsure"], True), (["tia"], True)],
)
def test_checklist_gate_is_three_valued(history: list[str], expected: bool) -> None:
    assert "aneurysm" in [o.value for o in _options("heart_brain_history")]
    resource = response(RULESET, {"heart_brain_history": history})
    assert _COMPILED["heart_brain_recent"](resource, {"resource": resource}) == [expected]


def _options(item_id: str) -> tuple[Any, ...]:
    item = RULESET.items[item_id].item
    assert isinstance(item, MultiChoiceItem)
    return item.options
