"""Impact of a candidate rule pack: replay stored screenings and count what would change.

Pure: the caller streams stored screenings in (answers, as-of date, stored decision and rule
statuses) and gets the totals back. Each screening is re-evaluated under the candidate with
its own stored as-of date, so "in the past 90 days" and ages mean what they meant then.
Memory stays constant: only counts and the first ``keep`` changed screenings are held.
"""

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.engine import AnswerErrors, Outcome, Ruleset, evaluate, validate_answers

OUTCOMES = tuple(outcome.value for outcome in Outcome)
"""Decisions from least to most cautious: the rows and columns of the transition matrix."""


@dataclass(frozen=True, slots=True)
class StoredScreening:
    """What a replay needs of one stored screening (never its subject).

    ``statuses`` holds the rules that were fired or unknown; every other rule was clear.
    """

    id: str
    as_of: date
    answers: Mapping[str, Any]
    decision: str
    statuses: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ChangedScreening:
    """A screening whose decision would change, with each rule whose status would change."""

    id: str
    before: str
    after: str
    rules: tuple[tuple[str, str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the change as JSON-ready data."""
        return {
            "id": self.id,
            "before": self.before,
            "after": self.after,
            "rules": [{"rule": r, "before": b, "after": a} for r, b, a in self.rules],
        }


@dataclass(slots=True)
class RuleCounts:
    """Per rule: screenings where it would newly fire, newly be unknown, or no longer fire."""

    newly_fired: int = 0
    newly_unknown: int = 0
    no_longer_fired: int = 0


@dataclass(slots=True)
class Impact:
    """The running totals of one impact analysis; ``add`` one stored screening at a time."""

    candidate: Ruleset
    keep: int = 500
    total: int = 0
    matrix: Counter[tuple[str, str]] = field(default_factory=Counter)
    rules: dict[str, RuleCounts] = field(default_factory=dict)
    changed: list[ChangedScreening] = field(default_factory=list)
    changed_total: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def add(self, screening: StoredScreening) -> None:
        """Replay one stored screening under the candidate pack and count the outcome.

        Answers the candidate no longer accepts (a removed item, a new validation) are
        counted per reason, ``code: item``, and are not evaluated; never silently dropped.
        """
        self.total += 1
        try:
            answers = validate_answers(self.candidate, screening.answers, as_of=screening.as_of)
        except AnswerErrors as error:
            for problem in error.errors:
                self.rejected[f"{problem.code}: {problem.item or '(answers)'}"] += 1
            return
        decision = evaluate(self.candidate, answers, as_of=screening.as_of)
        after = decision.outcome.value
        self.matrix[(screening.decision, after)] += 1
        moved = self._count_rules(screening.statuses, decision.statuses)
        if after != screening.decision:
            self.changed_total += 1
            if len(self.changed) < self.keep:
                self.changed.append(
                    ChangedScreening(screening.id, screening.decision, after, moved)
                )

    def _count_rules(
        self, before: Mapping[str, str], after: Mapping[str, Any]
    ) -> tuple[tuple[str, str, str], ...]:
        # Hot loop (a million screenings): statuses are StrEnums, compared as the strings
        # they are; ``.value`` is read only for the few rules that moved.
        moved = []
        for rule, status in after.items():
            old = before.get(rule, "clear")
            if old != status:
                moved.append((rule, old, status.value))
        moved.extend((rule, old, "clear") for rule, old in before.items() if rule not in after)
        for _rule, old, new in moved:
            counts = self.rules.get(_rule)
            if counts is None:
                counts = self.rules[_rule] = RuleCounts()
            if new == "fired":
                counts.newly_fired += 1
            elif new == "unknown":
                counts.newly_unknown += 1
            if old == "fired":
                counts.no_longer_fired += 1
        return tuple(sorted(moved))

    @property
    def rejected_total(self) -> int:
        """Screenings whose answers the candidate pack does not accept."""
        return self.total - sum(self.matrix.values())

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (ids only: never answers or subjects)."""
        return {
            "candidate": self.candidate.ref.to_dict(),
            "screenings": self.total,
            "changed": self.changed_total,
            "rejected": self.rejected_total,
            "matrix": [
                {"before": b, "after": a, "count": self.matrix[(b, a)]}
                for b in OUTCOMES
                for a in OUTCOMES
            ],
            "rules": {
                rule: {
                    "newly_fired": c.newly_fired,
                    "newly_unknown": c.newly_unknown,
                    "no_longer_fired": c.no_longer_fired,
                }
                for rule, c in sorted(self.rules.items())
            },
            "changed_screenings": [change.to_dict() for change in self.changed],
            "rejected_reasons": dict(sorted(self.rejected.items())),
        }

    def lines(self) -> list[str]:
        """The report as text for a terminal."""
        out = [
            f"Candidate {self.candidate.id} {self.candidate.version} "
            f"(sha256 {self.candidate.sha256})",
            f"{self.total} screenings replayed: {self.changed_total} would change decision, "
            f"{self.rejected_total} have answers the candidate does not accept",
            "",
            "before \\ after".ljust(16) + "".join(o.rjust(15) for o in OUTCOMES),
        ]
        for before in OUTCOMES:
            counts = "".join(str(self.matrix[(before, after)]).rjust(15) for after in OUTCOMES)
            out.append(before.ljust(16) + counts)
        if self.rules:
            out += ["", "rule".ljust(42) + "newly fired  newly unknown  no longer fired"]
            for rule, c in sorted(self.rules.items()):
                out.append(
                    f"{rule:<42}{c.newly_fired:>11}{c.newly_unknown:>15}{c.no_longer_fired:>17}"
                )
        if self.rejected:
            out += ["", "answers not accepted by the candidate:"]
            out += [f"  {reason}: {count}" for reason, count in sorted(self.rejected.items())]
        if self.changed:
            out += ["", f"changed screenings (first {len(self.changed)} of {self.changed_total}):"]
            for change in self.changed:
                rules = ", ".join(f"{r} {b}→{a}" for r, b, a in change.rules)
                out.append(f"  {change.id}: {change.before} → {change.after} ({rules})")
        return out
