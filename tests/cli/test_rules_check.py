"""`screening rules check`: through the installed entry point and through Typer's runner."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.engine import load_ruleset
from app.settings import get_settings

PACK_DIR = Path(__file__).resolve().parents[2] / "rules" / "ketamine-infusion-v1"
SCREENING = Path(sys.executable).parent / "screening"
ENTRY_POINTS = {"screening": [str(SCREENING)], "python -m app": [sys.executable, "-m", "app"]}
runner = CliRunner()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")}
    return env | extra


def run_cli(
    entry: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENTRY_POINTS[entry], *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A working directory and environment with no SCREENING_* settings, for CliRunner."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for key in [k for k in os.environ if k.startswith("SCREENING_")]:
        monkeypatch.delenv(key)
    get_settings.cache_clear()
    yield work
    get_settings.cache_clear()


def copy_pack(tmp_path: Path) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(PACK_DIR, target)
    return target


def edit(path: Path, old: str, new: str) -> int:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def with_systolic(tmp_path: Path) -> tuple[Path, int]:
    pack = copy_pack(tmp_path)
    line = edit(
        pack / "rules/uncontrolled_blood_pressure.yaml",
        "{item: systolic_bp, at_least: 160}",
        "{item: systolic, at_least: 160}",
    )
    return pack, line


def with_wrong_expectation(tmp_path: Path) -> Path:
    pack = copy_pack(tmp_path)
    with (pack / "rules/heart_failure.yaml").open("a", encoding="utf-8") as rule:
        rule.write(
            "  - name: a deliberately wrong case\n"
            '    answers: {heart_failure: "yes"}\n    expect: clear\n'
        )
    return pack


def total_tests() -> int:
    return sum(len(rule.rule.tests) for rule in load_ruleset(PACK_DIR).rules)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_check_passes_on_the_default_pack_with_a_summary(entry: str, tmp_path: Path) -> None:
    result = run_cli(entry, "rules", "check", str(PACK_DIR), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    n = total_tests()
    assert f"11 rules, {n} tests: {n} passed, 0 failed" in result.stdout
    assert f"sha256 {load_ruleset(PACK_DIR).sha256}" in result.stdout
    assert "OK" in result.stdout
    assert "FAIL" not in result.stdout
    assert "MISSING" not in result.stdout


def test_check_without_a_directory_finds_the_default_pack_from_anywhere(tmp_path: Path) -> None:
    result = run_cli("screening", "rules", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ketamine-infusion" in result.stdout
    assert "0 failed" in result.stdout


def test_check_fails_on_an_unknown_item_naming_file_and_line(tmp_path: Path) -> None:
    pack, line = with_systolic(tmp_path)
    result = run_cli("screening", "rules", "check", str(pack), cwd=tmp_path)
    assert result.returncode == 1
    assert f"rules/uncontrolled_blood_pressure.yaml:{line}:" in result.stderr
    assert "'systolic'" in result.stderr
    assert "invalid rule pack (1 problem(s))" in result.stderr


def test_check_fails_on_a_wrong_expectation_naming_rule_and_test(tmp_path: Path) -> None:
    pack = with_wrong_expectation(tmp_path)
    result = run_cli("screening", "rules", "check", str(pack), cwd=tmp_path)
    assert result.returncode == 1
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert failures == [
        "FAIL heart_failure: test 'a deliberately wrong case': expected clear, got fired"
    ]
    assert "1 failed" in result.stdout
    assert "OK:" not in result.stdout


def test_check_uses_screening_rules_dir(tmp_path: Path) -> None:
    pack, _ = with_systolic(tmp_path)
    result = run_cli(
        "screening", "rules", "check", cwd=tmp_path, env=clean_env(SCREENING_RULES_DIR=str(pack))
    )
    assert result.returncode == 1
    assert "'systolic'" in result.stderr


def test_help_is_available_for_every_level(tmp_path: Path) -> None:
    result = run_cli("screening", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "rules" in result.stdout
    assert "evaluate" in result.stdout
    for args in (["rules", "--help"], ["rules", "check", "--help"], ["evaluate", "--help"]):
        help_result = runner.invoke(app, args)
        assert help_result.exit_code == 0, args
        assert "Usage" in help_result.stdout


class TestWithRunner:
    def test_json_report_for_the_default_pack(self, isolated: Path) -> None:
        result = runner.invoke(app, ["rules", "check", str(PACK_DIR), "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        ruleset = load_ruleset(PACK_DIR)
        assert report["ok"] is True
        assert report["ruleset"] == {
            "id": "ketamine-infusion",
            "version": ruleset.version,
            "sha256": ruleset.sha256,
        }
        assert report["rules"] == 11
        assert len(report["tests"]) == total_tests()
        assert all(test["passed"] for test in report["tests"])
        assert {test["rule"] for test in report["tests"]} == {r.id for r in ruleset.rules}
        assert report["missing"] == {}

    def test_json_report_names_the_failing_rule_and_test(
        self, isolated: Path, tmp_path: Path
    ) -> None:
        pack = with_wrong_expectation(tmp_path)
        result = runner.invoke(app, ["rules", "check", str(pack), "--json"])
        assert result.exit_code == 1
        report = json.loads(result.stdout)
        assert report["ok"] is False
        failed = [test for test in report["tests"] if not test["passed"]]
        assert failed == [
            {
                "rule": "heart_failure",
                "name": "a deliberately wrong case",
                "expected": "clear",
                "actual": "fired",
                "error": None,
                "passed": False,
            }
        ]

    def test_json_report_lists_the_problems_of_an_invalid_pack(
        self, isolated: Path, tmp_path: Path
    ) -> None:
        pack, line = with_systolic(tmp_path)
        result = runner.invoke(app, ["rules", "check", str(pack), "--json"])
        assert result.exit_code == 1
        report = json.loads(result.stdout)
        assert report["ok"] is False
        (problem,) = report["problems"]
        assert problem.startswith(f"rules/uncontrolled_blood_pressure.yaml:{line}: ")

    def test_rule_lacking_a_status_fails_the_check(self, isolated: Path, tmp_path: Path) -> None:
        pack = copy_pack(tmp_path)
        path = pack / "rules/heart_failure.yaml"
        text = path.read_text(encoding="utf-8")
        head, tests = text.split("tests:\n")
        kept = [case for case in tests.split("  - ")[1:] if "expect: fired" in case]
        path.write_text(head + "tests:\n" + "".join("  - " + c for c in kept), encoding="utf-8")
        result = runner.invoke(app, ["rules", "check", str(pack)])
        assert result.exit_code == 1
        assert "MISSING heart_failure: no test expecting clear, unknown" in result.stdout

    def test_case_with_invalid_answers_fails_the_check(
        self, isolated: Path, tmp_path: Path
    ) -> None:
        pack = copy_pack(tmp_path)
        with (pack / "rules/heart_failure.yaml").open("a", encoding="utf-8") as rule:
            rule.write(
                '  - name: bad answers\n    answers: {heart_failure: "maybe"}\n'
                "    expect: unknown\n"
            )
        result = runner.invoke(app, ["rules", "check", str(pack)])
        assert result.exit_code == 1
        (line,) = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
        assert line.startswith("FAIL heart_failure: test 'bad answers': expected unknown, ")
        assert "invalid answers" in line

    def test_several_problems_are_all_printed(self, isolated: Path, tmp_path: Path) -> None:
        pack, _ = with_systolic(tmp_path)
        edit(pack / "rules/heart_failure.yaml", 'is: "yes"', "is: true")
        result = runner.invoke(app, ["rules", "check", str(pack)])
        assert result.exit_code == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 2
        assert "invalid rule pack (2 problem(s))" in result.stderr

    def test_missing_directory_fails(self, isolated: Path, tmp_path: Path) -> None:
        result = runner.invoke(app, ["rules", "check", str(tmp_path / "nowhere")])
        assert result.exit_code == 1
        assert "pack.yaml: file not found" in result.stderr
