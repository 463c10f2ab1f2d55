"""The pure rules core: rule pack loading, answer validation, three-valued evaluation, rule tests.

No HTTP, no database, no clock: callers pass the as-of date.
"""

from app.engine.answers import Answers, validate_answers
from app.engine.cases import CaseReport, CaseResult, run_tests
from app.engine.errors import AnswerError, AnswerErrors, RulesError, RulesetError
from app.engine.evaluate import evaluate
from app.engine.loader import load_ruleset, ruleset_from_document
from app.engine.logic import Truth
from app.engine.result import Decision, Evidence, Flag, Outcome, RulesetRef, RuleStatus, Severity
from app.engine.ruleset import Ruleset

__all__ = [
    "AnswerError",
    "AnswerErrors",
    "Answers",
    "CaseReport",
    "CaseResult",
    "Decision",
    "Evidence",
    "Flag",
    "Outcome",
    "RuleStatus",
    "RulesError",
    "Ruleset",
    "RulesetError",
    "RulesetRef",
    "Severity",
    "Truth",
    "evaluate",
    "load_ruleset",
    "ruleset_from_document",
    "run_tests",
    "validate_answers",
]
