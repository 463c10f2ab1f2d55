"""The outcome of an evaluation: decision, flags with reasons and evidence, rule statuses."""

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, NamedTuple, Protocol


class RuleStatus(StrEnum):
    """A rule's three-valued status: fired (true), unknown, or clear (false)."""

    fired = "fired"
    unknown = "unknown"
    clear = "clear"


class Severity(StrEnum):
    """What a fired rule means: exclusion, or a physician's review."""

    exclude = "exclude"
    review = "review"


class Outcome(StrEnum):
    """The screening decision, from least to most cautious."""

    candidate = "candidate"
    needs_review = "needs_review"
    not_candidate = "not_candidate"


class Evidence(NamedTuple):
    """One answer that decided a rule, or an item whose missing or unsure answer left it unknown.

    ``answer`` is the submitted JSON value, ``"unsure"``, or None when unanswered.
    """

    item: str
    answer: Any

    def to_dict(self) -> dict[str, Any]:
        """Return the evidence as in the result JSON."""
        return {"item": self.item, "answer": self.answer}


class Flag(NamedTuple):
    """A rule that fired or could not be ruled out.

    The human-readable ``reason`` is rendered when asked for: evaluation decides, and only a
    caller that shows or stores the flag pays for the text. (Flags and evidence are named
    tuples, immutable and cheap to build on the hot path.)
    """

    rule: str
    title: str
    severity: Severity
    status: RuleStatus
    evidence: tuple[Evidence, ...]
    explanation: "Explanation"

    @property
    def reason(self) -> str:
        """Why the rule fired, or which answers are missing or unsure."""
        return self.explanation.render(self.title, self.status)

    def to_dict(self) -> dict[str, Any]:
        """Return the flag as in the result JSON."""
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "status": self.status.value,
            "reason": self.reason,
            "evidence": [evidence.to_dict() for evidence in self.evidence],
        }


class Explanation(Protocol):
    """What a flag's reason is rendered from (the deciding leaves and the answer state)."""

    def render(self, title: str, status: RuleStatus) -> str:
        """Return the human-readable reason."""
        ...


@dataclass(frozen=True, slots=True)
class RulesetRef:
    """The exact rule pack a decision was made with."""

    id: str
    version: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        """Return the reference as in the result JSON."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of evaluating one answer set.

    Attributes:
        outcome: the decision.
        flags: fired and unknown rules, exclusions first, fired before unknown, then pack order.
        statuses: every rule's status, in pack order.
        ruleset: the rule pack used.
        as_of: the date the screening was evaluated for.
    """

    outcome: Outcome
    flags: tuple[Flag, ...]
    statuses: dict[str, RuleStatus]
    ruleset: RulesetRef
    as_of: date

    def to_dict(self) -> dict[str, Any]:
        """Return the result JSON of DESIGN.md "Contracts"."""
        return {
            "decision": self.outcome.value,
            "flags": [flag.to_dict() for flag in self.flags],
            "ruleset": self.ruleset.to_dict(),
            "as_of": self.as_of.isoformat(),
        }
