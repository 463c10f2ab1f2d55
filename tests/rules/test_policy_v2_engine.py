"""Policy v2 conventions in the engine (POLICY-V2.md section 1) on the v2 pack, and properties.

Covers: "unsure" inside a `choice` is unknown (1.1); checklist validation with the reserved
options "none" and "unsure" (1.2); three-valued `contains_any` as a rule leaf and as an
enable-when (1.2); a follow-up rule reads the follow-up alone (1.3); `null` (1.4). The
properties check that v2 only adds to v1 and restate the 14 v2 rules independently.
"""

import functools
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import (
    AnswerErrors,
    Decision,
    Ruleset,
    RulesetError,
    evaluate,
    load_ruleset,
    validate_answers,
)
from app.engine.conditions import DISABLED, MISSING, UNSURE
from app.engine.leaves import ContainsAny, ContainsNone
from tests.rules import test_properties as v1_properties

RULES_ROOT = Path(__file__).resolve().parents[2] / "rules"
AS_OF = date(2026, 6, 15)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Raw = dict[str, Any]

HISTORY = ["aneurysm", "avm", "brain_bleed", "stroke", "tia", "heart_attack", "coronary_disease",
           "irregular_heartbeat"]  # fmt: skip
RECENT = ["heart_attack", "stroke_or_tia", "unstable_angina", "heart_procedure"]
OTHER = ["seizures", "liver_disease", "glaucoma", "overactive_thyroid"]
BUCKETS = ["no", "yes_within_12_months", "yes_over_12_months_ago", "unsure"]
V1_RULES = (
    "pregnancy_or_breastfeeding", "uncontrolled_blood_pressure", "recent_concussion",
    "brain_injury_or_intracranial_pressure", "heart_failure", "schizophrenia",
    "prior_ketamine_reaction", "elevated_blood_pressure", "no_listed_indication",
    "conventional_treatment_not_tried", "under_18",
)  # fmt: skip


@functools.cache
def pack(name: str = "ketamine-infusion") -> Ruleset:
    return load_ruleset(RULES_ROOT / name)


def decide(raw: Raw, ruleset: Ruleset | None = None, as_of: date = AS_OF) -> Decision:
    ruleset = ruleset or pack()
    return evaluate(ruleset, validate_answers(ruleset, raw, as_of=as_of), as_of=as_of)


def status(raw: Raw, rule: str) -> str:
    return decide(raw).statuses[rule].value


def rejected(raw: Raw) -> list[tuple[str, str, str]]:
    with pytest.raises(AnswerErrors) as caught:
        validate_answers(pack(), raw, as_of=AS_OF)
    return [(error.code, error.item, error.message) for error in caught.value.errors]


class TestPacks:
    def test_v2_is_version_2_with_a_new_hash_and_v1_is_kept(self) -> None:
        v1, v2 = pack("ketamine-infusion-v1"), pack()
        assert (v1.id, v1.version) == ("ketamine-infusion", "1.0.0")
        assert v2.version == "2.0.0"
        assert v1.sha256 != v2.sha256

    def test_v2_keeps_every_v1_item_and_rule_and_adds_7_items_and_14_rules(self) -> None:
        v1, v2 = pack("ketamine-infusion-v1"), pack()
        assert set(v1.items) < set(v2.items)
        assert len(v2.items) - len(v1.items) == 7
        v1_rules = {rule.id: rule.rule for rule in v1.rules}
        v2_rules = {rule.id: rule.rule for rule in v2.rules}
        assert len(v2_rules) - len(v1_rules) == 14
        for rule_id, rule in v1_rules.items():
            assert v2_rules[rule_id] == rule, rule_id

    def test_v1_items_keep_their_types_options_and_enable_when(self) -> None:
        v1, v2 = pack("ketamine-infusion-v1"), pack()
        for item_id, compiled in v1.items.items():
            old, new = compiled.item, v2.items[item_id].item
            assert (old.type, old.enable_when) == (new.type, new.enable_when), item_id
            assert getattr(old, "options", None) == getattr(new, "options", None), item_id


class TestChoiceUnsure:
    @pytest.mark.parametrize("item", ["psychosis_or_mania", "substance_use"])
    def test_unsure_in_a_choice_is_unknown_not_a_value(self, item: str) -> None:
        answers = validate_answers(pack(), {item: "unsure"}, as_of=AS_OF)
        assert answers.state[item] is UNSURE
        assert answers.values[item] == "unsure"

    def test_every_rule_on_an_unsure_choice_is_unknown(self) -> None:
        decision = decide({"psychosis_or_mania": "unsure", "substance_use": "unsure"})
        for rule in ("psychosis_or_mania_recent", "psychosis_or_mania_history",
                     "substance_use_recent", "substance_use_history"):  # fmt: skip
            assert decision.statuses[rule].value == "unknown", rule

    def test_unsure_flag_names_the_unsure_answer_as_evidence(self) -> None:
        flags = decide({"psychosis_or_mania": "unsure"}).to_dict()["flags"]
        recent = next(f for f in flags if f["rule"] == "psychosis_or_mania_recent")
        assert recent["evidence"] == [{"item": "psychosis_or_mania", "answer": "unsure"}]
        assert 'answered "unsure": psychosis_or_mania' in recent["reason"]

    @pytest.mark.parametrize(
        ("value", "code"),
        [("Unsure", "bad_choice"), ("yes", "bad_choice"),
         (True, "wrong_type"), (["no"], "wrong_type")],
    )  # fmt: skip
    def test_a_choice_rejects_unlisted_values(self, value: object, code: str) -> None:
        assert [(c, i) for c, i, _ in rejected({"substance_use": value})] == [
            (code, "substance_use")
        ]


class TestChecklistValidation:
    def test_a_string_is_a_wrong_type(self) -> None:
        assert rejected({"heart_brain_history": "aneurysm"})[0][:2] == (
            "wrong_type",
            "heart_brain_history",
        )

    def test_an_empty_list_is_rejected_with_the_contract_reason(self) -> None:
        [(code, item, message)] = rejected({"other_medical_conditions": []})
        assert (code, item) == ("empty_selection", "other_medical_conditions")
        assert 'select at least one choice, or "none"' in message

    @pytest.mark.parametrize("value", [["None"], ["Aneurysm"], ["heart_procedure"], ["no"]])
    def test_options_are_those_of_that_item_case_sensitive(self, value: list[str]) -> None:
        assert [(c, i) for c, i, _ in rejected({"heart_brain_history": value})] == [
            ("bad_choice", "heart_brain_history")
        ]

    def test_an_option_of_history_is_not_an_option_of_recent(self) -> None:
        raw = {"heart_brain_history": ["stroke"], "heart_brain_recent": ["tia"]}
        assert [(c, i) for c, i, _ in rejected(raw)] == [("bad_choice", "heart_brain_recent")]

    def test_a_duplicate_is_rejected_without_repeating_the_value(self) -> None:
        [(code, item, message)] = rejected({"heart_brain_history": ["tia", "stroke", "stroke"]})
        assert (code, item) == ("duplicate_choice", "heart_brain_history")
        assert "more than once" in message
        assert "stroke" not in message

    @pytest.mark.parametrize("value", [["none", "aneurysm"], ["none", "unsure"], ["avm", "none"]])
    def test_none_cannot_be_combined(self, value: list[str]) -> None:
        [(code, item, message)] = rejected({"heart_brain_history": value})
        assert (code, item) == ("none_not_alone", "heart_brain_history")
        assert '"none" cannot be combined with other choices' in message

    @pytest.mark.parametrize("value", [["unsure"], ["heart_attack", "unsure"], ["none"]])
    def test_valid_checklists(self, value: list[str]) -> None:
        answers = validate_answers(pack(), {"heart_brain_history": value}, as_of=AS_OF)
        assert answers.values["heart_brain_history"] == value

    def test_v1_conditions_keep_their_v1_messages(self) -> None:
        [(code, item, message)] = rejected({"conditions": ["migraine", "migraine"]})
        assert (code, item) == ("bad_choice", "conditions")
        assert "distinct options" in message


class TestNull:
    def test_null_to_a_v2_item_is_unanswered(self) -> None:
        answers = validate_answers(pack(), {"heart_brain_history": None}, as_of=AS_OF)
        assert answers.state["heart_brain_history"] is MISSING
        assert status({"heart_brain_history": None}, "previous_stroke") == "unknown"

    def test_null_to_a_disabled_follow_up_is_not_an_answer(self) -> None:
        raw = {"other_medical_conditions": ["none"], "thyroid_controlled": None}
        answers = validate_answers(pack(), raw, as_of=AS_OF)
        assert answers.state["thyroid_controlled"] is DISABLED

    def test_null_under_an_unknown_item_id_is_rejected(self) -> None:
        assert [(c, i) for c, i, _ in rejected({"thyroid": None})] == [("unknown_item", "thyroid")]


class TestChecklistEnableWhen:
    @pytest.mark.parametrize(
        ("history", "is_enabled"),
        [
            (None, True),
            (["unsure"], True),
            (["irregular_heartbeat", "unsure"], True),  # contract A6
            (["tia"], True),
            (["coronary_disease", "aneurysm"], True),
            (["none"], False),
            (["aneurysm", "avm", "irregular_heartbeat"], False),
        ],
    )
    def test_recent_events_follow_up(self, history: list[str] | None, is_enabled: bool) -> None:
        answers = validate_answers(pack(), {"heart_brain_history": history}, as_of=AS_OF)
        assert answers.applies("heart_brain_recent") is is_enabled

    def test_an_answer_to_a_disabled_follow_up_is_rejected(self) -> None:
        raw = {"other_medical_conditions": ["glaucoma"], "thyroid_controlled": "no"}
        assert [(c, i) for c, i, _ in rejected(raw)] == [("item_disabled", "thyroid_controlled")]


class TestContainsAny:
    @pytest.mark.parametrize(
        ("other", "expected"),
        [
            (["glaucoma"], "fired"),
            (["glaucoma", "unsure"], "fired"),
            (["seizures", "unsure"], "unknown"),
            (["unsure"], "unknown"),
            (None, "unknown"),
            (["seizures", "liver_disease"], "clear"),
            (["none"], "clear"),
        ],
    )
    def test_three_valued_leaf(self, other: list[str] | None, expected: str) -> None:
        raw = {"other_medical_conditions": other}
        assert status(raw, "glaucoma_or_raised_eye_pressure") == expected

    def test_the_unsure_reason_says_what_was_not_ruled_out(self) -> None:
        flags = decide({"other_medical_conditions": ["seizures", "unsure"]}).to_dict()["flags"]
        flag = next(f for f in flags if f["rule"] == "glaucoma_or_raised_eye_pressure")
        assert flag["status"] == "unknown"
        assert 'other_medical_conditions is "unsure" about glaucoma' in flag["reason"]
        assert flag["evidence"] == [
            {"item": "other_medical_conditions", "answer": ["seizures", "unsure"]}
        ]

    def test_the_whole_list_is_the_evidence_of_a_fired_rule(self) -> None:
        flags = decide({"heart_brain_history": ["stroke", "tia"]}).to_dict()["flags"]
        flag = next(f for f in flags if f["rule"] == "previous_stroke")
        assert flag["evidence"] == [{"item": "heart_brain_history", "answer": ["stroke", "tia"]}]


class TestFollowUpAlone:
    def test_a_positive_follow_up_fires_when_its_gate_is_unsure(self) -> None:
        raw = {"ketamine_before": "unsure", "ketamine_reaction": "no", "ketamine_allergy": "yes"}
        decision = decide(raw)
        assert decision.statuses["ketamine_hypersensitivity"].value == "fired"
        assert decision.statuses["prior_ketamine_reaction"].value == "clear"

    def test_a_follow_up_is_clear_when_its_gate_is_definitely_false(self) -> None:
        assert status({"other_medical_conditions": ["none"]}, "uncontrolled_hyperthyroidism") == (
            "clear"
        )

    def test_contradictions_are_accepted_and_rules_fire_on_what_is_reported(self) -> None:
        raw = {"other_medical_conditions": ["unsure"], "thyroid_controlled": "no"}
        assert status(raw, "uncontrolled_hyperthyroidism") == "fired"


# ---- properties ----


@SETTINGS
@given(v1_properties.answer_sets())
def test_v2_adds_never_changes_a_v1_rule(case: tuple[Raw, date]) -> None:
    """Acceptance: answer sets of v1 items only give every v1 rule the same status."""
    raw, as_of = case
    v1 = decide(raw, pack("ketamine-infusion-v1"), as_of)
    v2 = decide(raw, pack(), as_of)
    for rule in V1_RULES:
        assert v2.statuses[rule] is v1.statuses[rule], rule


def _checklist(options: list[str]) -> st.SearchStrategy[list[str] | None]:
    some = st.lists(st.sampled_from([*options, "unsure"]), min_size=1, unique=True)
    return st.one_of(st.none(), st.just(["none"]), some)


@st.composite
def v2_answer_sets(draw: st.DrawFn) -> Raw:
    """Answers to v2 items only (with their gates), each possibly left out or null."""
    raw: Raw = {
        "ketamine_before": draw(st.sampled_from([None, "yes", "no", "unsure"])),
        "psychosis_or_mania": draw(st.sampled_from([None, *BUCKETS])),
        "substance_use": draw(st.sampled_from([None, *BUCKETS])),
        "heart_brain_history": draw(_checklist(HISTORY)),
        "other_medical_conditions": draw(_checklist(OTHER)),
    }
    gates: dict[str, tuple[str, Callable[[Any], str]]] = {
        "ketamine_allergy": ("ketamine_before", lambda a: _is(a, "yes")),
        "heart_brain_recent": (
            "heart_brain_history",
            lambda a: _contains(a, {"stroke", "tia", "heart_attack", "coronary_disease"}),
        ),
        "thyroid_controlled": (
            "other_medical_conditions",
            lambda a: _contains(a, {"overactive_thyroid"}),
        ),
    }
    for item, (gate, enables) in gates.items():
        if enables(raw[gate]) != "F":
            strategy = (
                _checklist(RECENT)
                if item == "heart_brain_recent"
                else st.sampled_from([None, "yes", "no", "unsure"])
            )
            raw[item] = draw(strategy)
    return {item: value for item, value in raw.items() if value is not None or draw(st.booleans())}


def _is(answer: Any, value: str) -> str:
    return "U" if answer is None or answer == "unsure" else "T" if answer == value else "F"


def _contains(answer: Any, listed: set[str]) -> str:
    if answer is None:
        return "U"
    if listed & set(answer):
        return "T"
    return "U" if "unsure" in answer else "F"


def oracle(raw: Raw) -> dict[str, str]:
    """POLICY-V2.md section 3, restated; a disabled item (absent from `raw`) compares false."""

    def on(item: str, test: Callable[[Any], str]) -> str:
        if item in ("ketamine_allergy", "heart_brain_recent", "thyroid_controlled") and (
            item not in raw and _gate_is_false(raw, item)
        ):
            return "F"
        return test(raw.get(item))

    truths = {
        "ketamine_hypersensitivity": on("ketamine_allergy", lambda a: _is(a, "yes")),
        "psychosis_or_mania_recent": on("psychosis_or_mania", lambda a: _is(a, BUCKETS[1])),
        "psychosis_or_mania_history": on("psychosis_or_mania", lambda a: _is(a, BUCKETS[2])),
        "substance_use_recent": on("substance_use", lambda a: _is(a, BUCKETS[1])),
        "substance_use_history": on("substance_use", lambda a: _is(a, BUCKETS[2])),
        "aneurysm_avm_or_brain_bleed": on(
            "heart_brain_history", lambda a: _contains(a, {"aneurysm", "avm", "brain_bleed"})
        ),
        "previous_stroke": on("heart_brain_history", lambda a: _contains(a, {"stroke"})),
        "recent_cardiac_or_cerebrovascular_event": on(
            "heart_brain_recent", lambda a: _contains(a, set(RECENT))
        ),
        "coronary_or_cerebrovascular_disease": on(
            "heart_brain_history",
            lambda a: _contains(a, {"tia", "heart_attack", "coronary_disease"}),
        ),
        "arrhythmia": on("heart_brain_history", lambda a: _contains(a, {"irregular_heartbeat"})),
        "seizure_disorder": on("other_medical_conditions", lambda a: _contains(a, {"seizures"})),
        "serious_liver_disease": on(
            "other_medical_conditions", lambda a: _contains(a, {"liver_disease"})
        ),
        "glaucoma_or_raised_eye_pressure": on(
            "other_medical_conditions", lambda a: _contains(a, {"glaucoma"})
        ),
        "uncontrolled_hyperthyroidism": on("thyroid_controlled", lambda a: _is(a, "no")),
    }
    return {rule: {"T": "fired", "F": "clear", "U": "unknown"}[t] for rule, t in truths.items()}


def _gate_is_false(raw: Raw, item: str) -> bool:
    if item == "ketamine_allergy":
        return _is(raw.get("ketamine_before"), "yes") == "F"
    if item == "heart_brain_recent":
        listed = {"stroke", "tia", "heart_attack", "coronary_disease"}
        return _contains(raw.get("heart_brain_history"), listed) == "F"
    return _contains(raw.get("other_medical_conditions"), {"overactive_thyroid"}) == "F"


@SETTINGS
@given(v2_answer_sets())
def test_engine_agrees_with_the_v2_contract(raw: Raw) -> None:
    statuses = decide(raw).statuses
    assert {rule: statuses[rule].value for rule in oracle(raw)} == oracle(raw)


@SETTINGS
@given(v2_answer_sets(), st.data())
def test_adding_unsure_to_a_checklist_only_moves_rules_to_unknown(
    raw: Raw, data: st.DataObject
) -> None:
    lists = [item for item, value in raw.items() if isinstance(value, list) and value != ["none"]]
    if not lists:
        return
    item = data.draw(st.sampled_from(lists))
    before = decide(raw).statuses
    after = decide({**raw, item: sorted({*raw[item], "unsure"})}).statuses
    for rule, old in before.items():
        assert after[rule] in (old, type(old).unknown), rule


class TestChecklistLeaves:
    """The three-valued leaves directly, including `contains_none` (v1's form) on a checklist."""

    def test_contains_none_is_the_three_valued_negation(self) -> None:
        leaf = ContainsNone("other", frozenset({"glaucoma"}))
        test, state_of = leaf.compile(), leaf.compile_state()
        cases = [
            (frozenset({"glaucoma", "unsure"}), "false", 0),
            (frozenset({"seizures", "unsure"}), "unknown", 4),
            (frozenset({"seizures"}), "true", 1),
            (DISABLED, "false", 3),
            (MISSING, "unknown", 2),
        ]
        for value, truth, state in cases:
            assert test({"other": value}, AS_OF).value == truth, value
            assert leaf.truth({"other": value}, AS_OF).value == truth, value
            assert state_of({"other": value}, AS_OF) == state, value

    def test_holds_is_true_only_when_the_comparison_is_definitely_true(self) -> None:
        leaf = ContainsAny("other", frozenset({"glaucoma"}))
        assert leaf.holds(frozenset({"glaucoma", "unsure"}), AS_OF) is True
        assert leaf.holds(frozenset({"unsure"}), AS_OF) is False
        assert ContainsNone("other", frozenset({"glaucoma"})).holds(frozenset({"none"}), AS_OF)

    def test_contains_none_describes_an_unsure_list(self) -> None:
        leaf = ContainsNone("other", frozenset({"glaucoma", "seizures"}))
        assert leaf.describe(frozenset({"unsure"}), AS_OF) == (
            'other is "unsure" about glaucoma, seizures'
        )
        assert leaf.describe(frozenset({"none"}), AS_OF) == (
            "other includes none of glaucoma, seizures"
        )
        assert leaf.describe(frozenset({"glaucoma"}), AS_OF) == "other includes glaucoma"


class TestReservedOptionsInRules:
    @pytest.mark.parametrize(
        ("old", "new", "message"),
        [
            ("contains_any: [glaucoma]}", "contains_any: [glaucoma, unsure]}",
             "'unsure' is a reserved option"),
            ("contains_any: [glaucoma]}", "contains_any: [none]}", "'none' is a reserved option"),
        ],
    )  # fmt: skip
    def test_a_rule_cannot_compare_with_a_reserved_checklist_option(
        self, tmp_path: Path, old: str, new: str, message: str
    ) -> None:
        target = tmp_path / "pack"
        shutil.copytree(RULES_ROOT / "ketamine-infusion", target)
        rule = target / "rules" / "glaucoma_or_raised_eye_pressure.yaml"
        text = rule.read_text(encoding="utf-8")
        assert text.count(old) == 1
        rule.write_text(text.replace(old, new), encoding="utf-8")
        with pytest.raises(RulesetError) as caught:
            load_ruleset(target)
        assert any(message in problem for problem in caught.value.problems)

    def test_a_rule_cannot_match_unsure_in_a_choice(self, tmp_path: Path) -> None:
        target = tmp_path / "pack"
        shutil.copytree(RULES_ROOT / "ketamine-infusion", target)
        rule = target / "rules" / "substance_use_recent.yaml"
        text = rule.read_text(encoding="utf-8")
        rule.write_text(text.replace("is: yes_within_12_months", "is: unsure"), encoding="utf-8")
        with pytest.raises(RulesetError) as caught:
            load_ruleset(target)
        assert any('"unsure" is unknown' in problem for problem in caught.value.problems)
