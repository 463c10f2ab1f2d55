"""Evaluate validated answers against a rule pack: statuses, decision, flags and evidence.

Implements DESIGN.md "Rules" and "Decision": `not_candidate` if any exclude rule fired; else
`needs_review` if any review rule fired or any rule is unknown; else `candidate`.
Deterministic, total on validated answers, and free of I/O and clocks.
"""

from datetime import date
from typing import NamedTuple

from app.engine.answers import Answers
from app.engine.conditions import DISABLED, MISSING, UNSURE, Leaf, State
from app.engine.logic import FALSE
from app.engine.result import Decision, Evidence, Flag, Outcome, RuleStatus, Severity
from app.engine.ruleset import Ruleset

_FIRED, _UNKNOWN, _CLEAR = RuleStatus.fired, RuleStatus.unknown, RuleStatus.clear
_EXCLUDE = Severity.exclude


def evaluate(ruleset: Ruleset, answers: Answers, *, as_of: date) -> Decision:
    """Evaluate every rule on validated answers.

    Args:
        ruleset: the rule pack the answers were validated against.
        answers: the output of `validate_answers` for the same pack and as-of date.
        as_of: the date windows and ages are computed for.

    Returns:
        The decision, with a flag for every fired or unknown rule.
    """
    state, values = answers.state, answers.values
    statuses: dict[str, RuleStatus] = {}
    # Flags in urgency order: exclude fired, exclude unknown, review fired, review unknown;
    # pack order within each.
    buckets: tuple[list[Flag], ...] = ([], [], [], [])
    for rule in ruleset.rules:
        status, leaves, items, evidence = rule.resolve(state, as_of)
        statuses[rule.id] = status
        if status is _CLEAR:
            continue
        if evidence is None:
            evidence = tuple([Evidence(item, values.get(item)) for item in items])
        bucket = (rule.severity is not _EXCLUDE) * 2 + (status is not _FIRED)
        buckets[bucket].append(
            Flag(
                rule.id,
                rule.title,
                rule.severity,
                status,
                evidence,
                _Explanation(leaves, state, as_of),
            )
        )
    if buckets[0]:
        outcome = Outcome.not_candidate
    elif buckets[1] or buckets[2] or buckets[3]:
        outcome = Outcome.needs_review
    else:
        outcome = Outcome.candidate
    flags = (*buckets[0], *buckets[1], *buckets[2], *buckets[3])
    return Decision(outcome, flags, statuses, ruleset.ref, as_of)


class _Explanation(NamedTuple):
    """The deciding leaves and the answer state a flag's reason is rendered from."""

    leaves: tuple[Leaf, ...]
    state: State
    as_of: date

    def render(self, title: str, status: RuleStatus) -> str:
        leaves, state, as_of = self.leaves, self.state, self.as_of
        known, missing, unsure = [], [], []
        for leaf in leaves:
            value = state[leaf.item]
            if value is MISSING:
                missing.append(leaf.item)
            elif value is UNSURE:
                unsure.append(leaf.item)
            elif value is DISABLED:
                known.append(f"{leaf.item} does not apply")
            elif leaf.truth(state, as_of) is not FALSE:
                # True, or unknown on an answered checklist holding "unsure" (policy v2 1.2).
                known.append(leaf.describe(value, as_of))
            else:
                known.append(f"not: {leaf.describe(value, as_of)}")
        if status is _FIRED:
            return f"{title}: {'; '.join(known)}"
        gaps = ([f"not answered: {', '.join(missing)}"] if missing else []) + (
            [f'answered "unsure": {", ".join(unsure)}'] if unsure else []
        )
        return f"{title}: cannot be ruled out ({'; '.join([*known, *gaps])})"
