"""Run the tests embedded in each rule and report which statuses each rule lacks a test for."""

from dataclasses import dataclass
from datetime import date

from app.engine.answers import validate_answers
from app.engine.errors import AnswerErrors
from app.engine.evaluate import evaluate
from app.engine.result import RuleStatus
from app.engine.ruleset import Ruleset

REQUIRED_STATUSES = (RuleStatus.fired, RuleStatus.clear, RuleStatus.unknown)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one embedded rule test."""

    rule: str
    name: str
    expected: str
    actual: str | None
    error: str | None = None

    @property
    def passed(self) -> bool:
        """Whether the rule had the expected status on valid answers."""
        return self.error is None and self.actual == self.expected


@dataclass(frozen=True, slots=True)
class CaseReport:
    """Every rule test's result and, per rule, the statuses no test covers."""

    rules: int
    results: tuple[CaseResult, ...]
    missing: dict[str, tuple[str, ...]]

    @property
    def failures(self) -> tuple[CaseResult, ...]:
        """The tests that did not pass."""
        return tuple(result for result in self.results if not result.passed)

    @property
    def ok(self) -> bool:
        """True when every test passed and every rule has a fired, clear and unknown test."""
        return not self.failures and not self.missing


def run_tests(ruleset: Ruleset) -> CaseReport:
    """Run every rule's embedded tests through `validate_answers` and `evaluate`."""
    results: list[CaseResult] = []
    missing: dict[str, tuple[str, ...]] = {}
    for compiled in ruleset.rules:
        rule = compiled.rule
        covered: set[str] = set()
        for case in rule.tests:
            as_of = date.fromisoformat(case.as_of) if case.as_of else ruleset.tests_as_of
            try:
                answers = validate_answers(ruleset, case.answers, as_of=as_of)
            except AnswerErrors as error:
                results.append(
                    CaseResult(rule.id, case.name, case.expect, None, f"invalid answers: {error}")
                )
                continue
            actual = evaluate(ruleset, answers, as_of=as_of).statuses[rule.id].value
            results.append(CaseResult(rule.id, case.name, case.expect, actual))
            covered.add(case.expect)
        lacking = tuple(status.value for status in REQUIRED_STATUSES if status.value not in covered)
        if lacking:
            missing[rule.id] = lacking
    return CaseReport(len(ruleset.rules), tuple(results), missing)
