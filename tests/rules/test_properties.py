"""Properties over generated valid answer sets (issue 2, Acceptance (a)-(e)), and an oracle.

The oracle restates DESIGN.md "Rules" and "Decision" directly in Python, independently of the
engine, so every generated answer set is also checked against the policy text.
"""

import functools
import random
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import (
    Decision,
    Outcome,
    Ruleset,
    RuleStatus,
    evaluate,
    load_ruleset,
    validate_answers,
)
from app.engine.conditions import DISABLED
from app.engine.model import ChoiceItem, IntegerItem, MultiChoiceItem

PACK_DIR = Path(__file__).resolve().parents[2] / "rules" / "ketamine-infusion-v1"
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RANK = {Outcome.candidate: 0, Outcome.needs_review: 1, Outcome.not_candidate: 2}
# Items whose "yes" can only make an exclusion rule fire (bp_controlled is the other way round).
EXCLUSION_ITEMS = (
    "pregnant",
    "breastfeeding",
    "hypertension",
    "concussion",
    "brain_injury",
    "intracranial_pressure",
    "heart_failure",
    "schizophrenia",
    "ketamine_before",
    "ketamine_reaction",
)
# Values worth hitting often: DESIGN.md thresholds and their neighbours.
EDGES = {
    "systolic_bp": [139, 140, 159, 160],
    "diastolic_bp": [89, 90, 99, 100],
    "symptom_duration_months": [0, 600],
}
Raw = dict[str, Any]


@functools.cache
def default_pack() -> Ruleset:
    return load_ruleset(PACK_DIR)


def is_enabled(item_id: str, raw: Raw) -> bool:
    """DESIGN.md enable_when: disabled only when definitely false (a missing or unsure answer
    to the controlling question leaves the item enabled)."""
    enable_when = default_pack().items[item_id].item.enable_when
    if enable_when is None:
        return True
    controller = enable_when["item"]
    if not is_enabled(controller, raw):
        return False
    answer = raw.get(controller)
    if answer is None or answer == "unsure":
        return True
    values = enable_when["in"] if "in" in enable_when else [enable_when["is"]]
    return answer in values


@st.composite
def date_before(draw: st.DrawFn, as_of: date, earliest: date, near: list[int]) -> str:
    """A date in [earliest, as_of], often ``near`` days before as_of."""
    span = (as_of - earliest).days
    offsets = [n for n in near if 0 <= n <= span]
    strategy = st.integers(0, span)
    if offsets:
        strategy = st.one_of(strategy, st.sampled_from(offsets))
    return (as_of - timedelta(days=draw(strategy))).isoformat()


@st.composite
def answer_sets(draw: st.DrawFn) -> tuple[Raw, date]:
    """A valid answer set for the default pack and its as-of date; any answer may be left out.

    Half the sets describe a mostly healthy adult, so that `candidate` is common enough for
    the properties about it to be exercised.
    """
    as_of = draw(st.dates(min_value=date(2001, 1, 1), max_value=date(2040, 12, 31)))
    is_healthy = draw(st.booleans())
    raw: Raw = {}
    for item in default_pack().questionnaire.items:
        skip = draw(st.integers(0, 40 if is_healthy else 4)) == 0
        if not is_enabled(item.id, raw) or skip:
            continue
        raw[item.id] = draw(_value(item, raw, as_of, is_healthy=is_healthy))
    return raw, as_of


def _value(item: Any, raw: Raw, as_of: date, *, is_healthy: bool) -> st.SearchStrategy[Any]:
    if item.type in ("yes_no", "yes_no_unsure"):
        rare = ["yes", "unsure"] if item.type == "yes_no_unsure" else ["yes"]
        if item.id == "bp_controlled" or item.id == "prior_treatments_tried":
            rare = ["no", "unsure"]
        if is_healthy:
            usual = "yes" if rare[0] == "no" else "no"
            return st.sampled_from([usual] * 18 + rare)
        return st.sampled_from(["yes", "no", *rare[1:]])
    if isinstance(item, ChoiceItem):
        return st.sampled_from([option.value for option in item.options])
    if isinstance(item, MultiChoiceItem):
        options = [option.value for option in item.options]
        if is_healthy:
            options = options[:-1]  # leave "other" out: a listed indication
        some = st.lists(st.sampled_from(options), min_size=max(1, item.min_selected), unique=True)
        return some if is_healthy else st.one_of(some, st.just(options[-1:]))
    if isinstance(item, IntegerItem):
        if is_healthy and item.id in ("systolic_bp", "diastolic_bp"):
            return st.integers(item.min, EDGES[item.id][0])
        edges = [n for n in EDGES.get(item.id, []) if item.min <= n <= item.max]
        return st.one_of(st.integers(item.min, item.max), st.sampled_from(edges))
    if item.id == "date_of_birth":
        eighteen = (as_of - date(as_of.year - 18, as_of.month, min(as_of.day, 28))).days
        near = [] if is_healthy else [eighteen - 1, eighteen, eighteen + 1, eighteen + 2, 0]
        latest = as_of - timedelta(days=eighteen + 3) if is_healthy else as_of
        return date_before(latest, as_of - timedelta(days=36500), near)
    # concussion_date: never before the date of birth
    earliest = date.fromisoformat(raw.get("date_of_birth", "1930-01-01"))
    return date_before(as_of, earliest, [0, 1, 89, 90, 91, 92])


def run(raw: Raw, as_of: date) -> Decision:
    ruleset = default_pack()
    return evaluate(ruleset, validate_answers(ruleset, raw, as_of=as_of), as_of=as_of)


def moved_only_to_unknown(before: Decision, after: Decision) -> bool:
    return all(
        after.statuses[rule] in (status, RuleStatus.unknown)
        for rule, status in before.statuses.items()
    )


# ---- an independent restatement of DESIGN.md "Three-valued logic" and "Rules" ----
T, F, U = "T", "F", "U"


def k_any(*parts: str) -> str:
    return T if T in parts else U if U in parts else F


def k_all(*parts: str) -> str:
    return F if F in parts else U if U in parts else T


def compare(raw: Raw, item: str, predicate: Callable[[Any], bool]) -> str:
    if not is_enabled(item, raw):
        return F
    answer = raw.get(item)
    if answer is None or answer == "unsure":
        return U
    return T if predicate(answer) else F


def age(born: date, on: date) -> int:
    try:
        birthday = born.replace(year=on.year)
    except ValueError:  # 29 February in a non-leap year: the birthday is 1 March
        birthday = date(on.year, 3, 1)
    return on.year - born.year - (on < birthday)


def oracle(raw: Raw, as_of: date) -> tuple[dict[str, str], str]:
    def yes(item: str) -> str:
        return compare(raw, item, lambda a: a == "yes")

    listed = {"migraine", "chronic_pain", "fibromyalgia", "nerve_pain", "cancer_pain", "depression"}
    truths = {
        "pregnancy_or_breastfeeding": k_any(yes("pregnant"), yes("breastfeeding")),
        "uncontrolled_blood_pressure": k_any(
            compare(raw, "systolic_bp", lambda a: a >= 160),
            compare(raw, "diastolic_bp", lambda a: a >= 100),
            k_all(yes("hypertension"), compare(raw, "bp_controlled", lambda a: a == "no")),
        ),
        "elevated_blood_pressure": k_any(
            compare(raw, "systolic_bp", lambda a: 140 <= a < 160),
            compare(raw, "diastolic_bp", lambda a: 90 <= a < 100),
        ),
        "recent_concussion": k_all(
            yes("concussion"),
            compare(
                raw, "concussion_date", lambda a: 0 <= (as_of - date.fromisoformat(a)).days <= 90
            ),
        ),
        "brain_injury_or_intracranial_pressure": k_any(
            yes("brain_injury"), yes("intracranial_pressure")
        ),
        "heart_failure": yes("heart_failure"),
        "schizophrenia": yes("schizophrenia"),
        "prior_ketamine_reaction": k_all(yes("ketamine_before"), yes("ketamine_reaction")),
        "no_listed_indication": compare(raw, "conditions", lambda a: not listed & set(a)),
        "conventional_treatment_not_tried": compare(
            raw, "prior_treatments_tried", lambda a: a == "no"
        ),
        "under_18": compare(raw, "date_of_birth", lambda a: age(date.fromisoformat(a), as_of) < 18),
    }
    statuses = {rule: {T: "fired", F: "clear", U: "unknown"}[t] for rule, t in truths.items()}
    exclude = {rule.id for rule in default_pack().rules if rule.severity.value == "exclude"}
    if any(statuses[rule] == "fired" for rule in exclude):
        outcome = "not_candidate"
    elif any(status != "clear" for status in statuses.values()):
        outcome = "needs_review"
    else:
        outcome = "candidate"
    return statuses, outcome


# ---- properties ----


@SETTINGS
@given(answer_sets())
def test_generated_answer_sets_are_valid(case: tuple[Raw, date]) -> None:
    raw, as_of = case
    answers = validate_answers(default_pack(), raw, as_of=as_of)
    assert answers.values == raw


@SETTINGS
@given(answer_sets())
def test_engine_agrees_with_design_policy(case: tuple[Raw, date]) -> None:
    raw, as_of = case
    decision = run(raw, as_of)
    statuses, outcome = oracle(raw, as_of)
    assert {rule: s.value for rule, s in decision.statuses.items()} == statuses
    assert decision.outcome.value == outcome


@SETTINGS
@given(answer_sets(), st.data())
def test_removing_answers_only_moves_rules_to_unknown(
    case: tuple[Raw, date], data: st.DataObject
) -> None:  # property (a)
    raw, as_of = case
    before = run(raw, as_of)
    removals = [[item] for item in raw]
    if raw:
        removals.append(data.draw(st.lists(st.sampled_from(list(raw)), unique=True)))
    for removed in removals:
        after = run({k: v for k, v in raw.items() if k not in removed}, as_of)
        assert moved_only_to_unknown(before, after), removed
        if after.outcome is Outcome.candidate:
            assert before.outcome is Outcome.candidate, removed


@SETTINGS
@given(answer_sets())
def test_answering_unsure_only_moves_rules_to_unknown(case: tuple[Raw, date]) -> None:
    # property (a), "unsure" where the item allows it
    raw, as_of = case
    before = run(raw, as_of)
    for item_id, compiled in default_pack().items.items():
        if compiled.item.type != "yes_no_unsure" or not is_enabled(item_id, raw):
            continue
        after = run({**raw, item_id: "unsure"}, as_of)
        assert moved_only_to_unknown(before, after), item_id
        if after.outcome is Outcome.candidate:
            assert before.outcome is Outcome.candidate, item_id


@SETTINGS
@given(answer_sets())
def test_no_to_yes_on_an_exclusion_item_never_lowers_caution(case: tuple[Raw, date]) -> None:
    # property (b): candidate < needs_review < not_candidate
    raw, as_of = case
    before = run(raw, as_of)
    for item_id in EXCLUSION_ITEMS:
        if raw.get(item_id) == "no":
            after = run({**raw, item_id: "yes"}, as_of)
            assert RANK[after.outcome] >= RANK[before.outcome], item_id
    if raw.get("bp_controlled") == "yes":  # for this item "no" is the worrying answer
        after = run({**raw, "bp_controlled": "no"}, as_of)
        assert RANK[after.outcome] >= RANK[before.outcome]


@SETTINGS
@given(answer_sets())
def test_candidate_never_occurs_with_an_unknown_rule(case: tuple[Raw, date]) -> None:
    # property (c)
    decision = run(*case)
    has_unknown = RuleStatus.unknown in decision.statuses.values()
    if has_unknown:
        assert decision.outcome is not Outcome.candidate
    if decision.outcome is Outcome.candidate:
        assert set(decision.statuses.values()) == {RuleStatus.clear}
        assert decision.flags == ()


@SETTINGS
@given(answer_sets(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_answer_order(
    case: tuple[Raw, date], rnd: random.Random
) -> None:  # property (d)
    raw, as_of = case
    items = list(raw.items())
    rnd.shuffle(items)
    assert run(dict(items), as_of).to_dict() == run(raw, as_of).to_dict()


@SETTINGS
@given(answer_sets())
def test_evidence_names_only_existing_enabled_items(case: tuple[Raw, date]) -> None:
    # property (e)
    raw, as_of = case
    ruleset = default_pack()
    answers = validate_answers(ruleset, raw, as_of=as_of)
    decision = evaluate(ruleset, answers, as_of=as_of)
    for flag in decision.to_dict()["flags"]:
        assert flag["status"] in ("fired", "unknown")
        assert flag["evidence"], flag["rule"]
        for evidence in flag["evidence"]:
            item = evidence["item"]
            assert item in ruleset.items, flag
            assert is_enabled(item, raw), flag
            assert answers.state[item] is not DISABLED, flag
            assert evidence["answer"] == raw.get(item), flag
        if flag["status"] == "unknown":
            gaps = [e for e in flag["evidence"] if e["answer"] in (None, "unsure")]
            assert gaps, flag


@SETTINGS
@given(answer_sets())
def test_flags_are_exactly_the_fired_and_unknown_rules(case: tuple[Raw, date]) -> None:
    decision = run(*case)
    flagged = {flag.rule: flag.status for flag in decision.flags}
    assert flagged == {r: s for r, s in decision.statuses.items() if s is not RuleStatus.clear}


@SETTINGS
@given(answer_sets())
def test_evaluation_is_deterministic(case: tuple[Raw, date]) -> None:
    raw, as_of = case
    first = run(raw, as_of)
    assert run(dict(raw), as_of).to_dict() == first.to_dict()
    assert run(raw, as_of).statuses == first.statuses
