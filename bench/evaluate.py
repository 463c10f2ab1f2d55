"""Benchmark the rules core: validate + evaluate, evaluate alone, and a naive YAML walker.

Run: .venv/bin/python bench/evaluate.py [--rounds 7] [--number 2000]
Prints the median microseconds per call over the rounds, in one run, and the ratio of the
naive walker (re-walking the rule YAML dictionaries on every call) to the compiled evaluator.
"""

import argparse
import functools
import statistics
import timeit
from datetime import date
from typing import Any

from app.engine import (
    Decision,
    Evidence,
    Flag,
    Outcome,
    RuleStatus,
    Severity,
    evaluate,
    load_ruleset,
    validate_answers,
)
from app.engine.conditions import DISABLED, MISSING, UNSURE, age_on
from app.engine.ruleset import Ruleset
from app.settings import default_rules_path

AS_OF = date(2026, 6, 15)
FULL = {
    "date_of_birth": "1980-04-02",
    "sex_at_birth": "female",
    "conditions": ["migraine", "chronic_pain"],
    "symptom_duration_months": 36,
    "prior_treatments_tried": "yes",
    "pregnant": "no",
    "breastfeeding": "no",
    "hypertension": "yes",
    "bp_controlled": "yes",
    "systolic_bp": 128,
    "diastolic_bp": 82,
    "concussion": "yes",
    "concussion_date": "2019-05-01",
    "brain_injury": "no",
    "intracranial_pressure": "no",
    "heart_failure": "no",
    "schizophrenia": "no",
    "ketamine_before": "yes",
    "ketamine_reaction": "no",
}
EMPTY: dict[str, Any] = {}


def _leaf(cond: dict[str, Any], value: Any, as_of: date) -> bool:
    if "is" in cond:
        return bool(value == cond["is"])
    if "in" in cond:
        return bool(value in cond["in"])
    if "contains_any" in cond:
        return any(one in value for one in cond["contains_any"])
    if "contains_none" in cond:
        return not any(one in value for one in cond["contains_none"])
    if "within_days" in cond:
        return bool(0 <= (as_of - value).days <= cond["within_days"])
    if "age_below" in cond:
        return bool(age_on(value, as_of) < cond["age_below"])
    ok = True
    for key, test in (
        ("at_least", int.__ge__),
        ("above", int.__gt__),
        ("at_most", int.__le__),
        ("below", int.__lt__),
    ):
        if key in cond:
            ok = ok and test(value, cond[key])
    return ok


def walk(cond: dict[str, Any], state: dict[str, object], as_of: date) -> tuple[str, list[str]]:
    """The naive evaluator: interpret the YAML mapping on every call, with evidence."""
    if "any" in cond or "all" in cond:
        key = "any" if "any" in cond else "all"
        results = [walk(part, state, as_of) for part in cond[key]]
        truths = [truth for truth, _ in results]
        win, lose = ("T", "F") if key == "any" else ("F", "T")
        value = win if win in truths else "U" if "U" in truths else lose
        keep = [
            items
            for truth, items in results
            if (truth == value) or value == lose or (key == "all" and value == "U" and truth != "F")
        ]
        return value, [item for items in keep for item in items]
    if "not" in cond:
        truth, items = walk(cond["not"], state, as_of)
        return {"T": "F", "F": "T"}.get(truth, "U"), items
    answer = state[cond["item"]]
    if answer is DISABLED:
        return "F", [cond["item"]]
    if answer is MISSING or answer is UNSURE:
        return "U", [cond["item"]]
    return ("T" if _leaf(cond, answer, as_of) else "F"), [cond["item"]]


def naive_evaluate(
    ruleset: Ruleset, document: dict[str, Any], answers: Any, as_of: date
) -> Decision:
    """Evaluate by walking the stored rule documents: the baseline the compiled core must beat."""
    statuses: dict[str, RuleStatus] = {}
    flags: list[tuple[tuple[bool, bool, int], Flag]] = []
    for index, rule in enumerate(document["rules"]):
        truth, items = walk(rule["when"], answers.state, as_of)
        status = {"T": RuleStatus.fired, "F": RuleStatus.clear}.get(truth, RuleStatus.unknown)
        statuses[rule["id"]] = status
        if status is not RuleStatus.clear:
            evidence = tuple(
                Evidence(item, answers.values.get(item))
                for item in dict.fromkeys(items)
                if answers.state[item] is not DISABLED
            )
            severity = Severity(rule["severity"])
            rank = (severity is not Severity.exclude, status is not RuleStatus.fired, index)
            flag = Flag(rule["id"], rule["title"], severity, status, evidence, None)  # type: ignore[arg-type]
            flags.append((rank, flag))
    flags.sort(key=lambda pair: pair[0])
    fired_exclude = any(
        f.severity is Severity.exclude and f.status is RuleStatus.fired for _, f in flags
    )
    outcome = (
        Outcome.not_candidate
        if fired_exclude
        else Outcome.needs_review
        if flags
        else Outcome.candidate
    )
    return Decision(outcome, tuple(f for _, f in flags), statuses, ruleset.ref, as_of)


def median_us(stmt: Any, rounds: int, number: int) -> float:
    return statistics.median(timeit.repeat(stmt, number=number, repeat=rounds)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    ruleset = load_ruleset(default_rules_path())
    print(
        f"rule pack {ruleset.id} {ruleset.version}: {len(ruleset.rules)} rules, "
        f"{len(ruleset.items)} items; median of {args.rounds} rounds x {args.number} calls"
    )
    header = ("answers", "validate+evaluate", "evaluate", "naive walker", "naive/evaluate")
    print("{:<8} {:>18} {:>10} {:>13} {:>15}".format(*header))
    for name, raw in (("full", FULL), ("empty", EMPTY)):
        answers = validate_answers(ruleset, raw, as_of=AS_OF)
        compiled = evaluate(ruleset, answers, as_of=AS_OF)
        naive = naive_evaluate(ruleset, ruleset.document, answers, AS_OF)
        # The baseline must compute the same thing, or the comparison means nothing.
        assert compiled.outcome is naive.outcome
        assert compiled.statuses == naive.statuses
        assert [f.evidence for f in compiled.flags] == [f.evidence for f in naive.flags]
        both, alone, walker = (
            median_us(stmt, args.rounds, args.number)
            for stmt in (
                functools.partial(_validate_and_evaluate, ruleset, raw),
                functools.partial(evaluate, ruleset, answers, as_of=AS_OF),
                functools.partial(naive_evaluate, ruleset, ruleset.document, answers, AS_OF),
            )
        )
        print(
            f"{name:<8} {both:>15.1f} µs {alone:>7.1f} µs {walker:>10.1f} µs "
            f"{walker / alone:>14.2f}x"
        )


def _validate_and_evaluate(ruleset: Ruleset, raw: dict[str, Any]) -> Decision:
    return evaluate(ruleset, validate_answers(ruleset, raw, as_of=AS_OF), as_of=AS_OF)


if __name__ == "__main__":
    main()
