"""Every embedded rule test of every rule pack under rules/, and how run_tests reports them."""

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.engine import (
    AnswerErrors,
    Ruleset,
    RulesetError,
    evaluate,
    load_ruleset,
    run_tests,
    validate_answers,
)

RULES_ROOT = Path(__file__).resolve().parents[2] / "rules"
PACK_DIRS = sorted(path.parent for path in RULES_ROOT.glob("*/pack.yaml"))


def _cases() -> list[Any]:
    params: list[Any] = []
    for pack_dir in PACK_DIRS:
        prefix = f"{pack_dir.name}/" if len(PACK_DIRS) > 1 else ""
        try:
            ruleset = load_ruleset(pack_dir)
        except RulesetError as error:
            params.append(pytest.param(pack_dir, None, error.problems, id=f"{pack_dir.name}"))
            continue
        for compiled in ruleset.rules:
            for case in compiled.rule.tests:
                params.append(
                    pytest.param(
                        ruleset, compiled.id, case, id=f"{prefix}{compiled.id}: {case.name}"
                    )
                )
    return params


def test_there_is_at_least_one_pack_with_cases() -> None:
    assert RULES_ROOT / "ketamine-infusion" in PACK_DIRS
    assert len(_cases()) >= 75  # 25 rules, each with a fired, a clear and an unknown case


@pytest.mark.parametrize(("ruleset", "rule", "case"), _cases())
def test_embedded_rule_case(ruleset: Ruleset | Path, rule: str | None, case: Any) -> None:
    if not isinstance(ruleset, Ruleset):
        pytest.fail(f"{ruleset} does not load:\n" + "\n".join(case))
    assert rule is not None
    as_of = date.fromisoformat(case.as_of) if case.as_of else ruleset.tests_as_of
    try:
        answers = validate_answers(ruleset, case.answers, as_of=as_of)
    except AnswerErrors as error:
        pytest.fail(f"the case's answers are invalid: {error}")
    decision = evaluate(ruleset, answers, as_of=as_of)
    assert decision.statuses[rule].value == case.expect
    flagged = {flag.rule: flag.status.value for flag in decision.flags}
    assert flagged.get(rule, "clear") == case.expect


def copy_pack(tmp_path: Path) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(RULES_ROOT / "ketamine-infusion", target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


class TestRunTests:
    def test_default_pack_passes_every_case(self) -> None:
        ruleset = load_ruleset(RULES_ROOT / "ketamine-infusion")
        report = run_tests(ruleset)
        assert report.rules == 25  # policy v2: the 11 rules of v1 and 14 more
        assert len(report.results) == sum(len(rule.rule.tests) for rule in ruleset.rules)
        assert report.failures == ()
        assert report.missing == {}
        assert report.ok is True

    def test_wrong_expectation_is_reported_naming_rule_and_test(self, tmp_path: Path) -> None:
        pack = copy_pack(tmp_path)
        with (pack / "rules/heart_failure.yaml").open("a", encoding="utf-8") as rule:
            rule.write(
                "  - name: a deliberately wrong case\n"
                '    answers: {heart_failure: "yes"}\n    expect: clear\n'
            )
        report = run_tests(load_ruleset(pack))
        assert report.ok is False
        (failure,) = report.failures
        assert (failure.rule, failure.name, failure.expected, failure.actual, failure.error) == (
            "heart_failure",
            "a deliberately wrong case",
            "clear",
            "fired",
            None,
        )
        assert failure.passed is False

    def test_case_with_invalid_answers_is_a_failure_with_the_reason(self, tmp_path: Path) -> None:
        pack = copy_pack(tmp_path)
        edit(
            pack / "rules/heart_failure.yaml",
            'answers: {heart_failure: "yes"}',
            'answers: {heart_failure: "yes", systolic: 120}',
        )
        report = run_tests(load_ruleset(pack))
        (failure,) = report.failures
        assert failure.rule == "heart_failure"
        assert failure.actual is None
        assert failure.error is not None
        assert "invalid answers" in failure.error
        assert "systolic" in failure.error
        assert report.ok is False

    def test_rule_lacking_a_status_is_reported_missing(self, tmp_path: Path) -> None:
        pack = copy_pack(tmp_path)
        path = pack / "rules/heart_failure.yaml"
        text = path.read_text(encoding="utf-8")
        head, tests = text.split("tests:\n")
        kept = [case for case in tests.split("  - ")[1:] if "expect: fired" in case]
        path.write_text(head + "tests:\n" + "".join("  - " + c for c in kept), encoding="utf-8")
        report = run_tests(load_ruleset(pack))
        assert report.failures == ()
        assert report.missing == {"heart_failure": ("clear", "unknown")}
        assert report.ok is False

    def test_case_as_of_overrides_the_pack_default(self, tmp_path: Path) -> None:
        pack = copy_pack(tmp_path)
        edit(
            pack / "rules/under_18.yaml",
            '  - name: adult\n    answers: {date_of_birth: "1980-01-01"}\n    expect: clear\n',
            '  - name: adult\n    answers: {date_of_birth: "1980-01-01"}\n'
            '    as_of: "1990-01-01"\n    expect: clear\n',
        )
        (failure,) = run_tests(load_ruleset(pack)).failures
        assert (failure.rule, failure.name, failure.actual) == ("under_18", "adult", "fired")


def test_every_v2_rule_tests_fired_clear_unknown_and_its_disabled_case() -> None:
    """Issue 12: each rule's embedded tests cover every row of its truth table."""
    v1 = {rule.id for rule in load_ruleset(RULES_ROOT / "ketamine-infusion-v1").rules}
    ruleset = load_ruleset(RULES_ROOT / "ketamine-infusion")
    for rule in ruleset.rules:
        if rule.id in v1:
            continue
        assert {test.expect for test in rule.rule.tests} == {"fired", "clear", "unknown"}, rule.id
        gated = [i for i in set(rule.node.item_ids()) if ruleset.items[i].enable_when is not None]
        for item in gated:
            disabled = [
                test
                for test in rule.rule.tests
                if not validate_answers(ruleset, test.answers, as_of=ruleset.tests_as_of).applies(
                    item
                )
            ]
            assert disabled, f"{rule.id}: no test where {item} does not apply"
            assert {test.expect for test in disabled} == {"clear"}, rule.id
