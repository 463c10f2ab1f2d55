"""`screening evaluate`: the DESIGN.md result JSON for a file or stdin; errors on stderr."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.engine import evaluate, load_ruleset, validate_answers
from app.settings import get_settings

PACK_DIR = Path(__file__).resolve().parents[2] / "rules" / "ketamine-infusion"
SCREENING = Path(sys.executable).parent / "screening"
ENTRY_POINTS = {"screening": [str(SCREENING)], "python -m app": [sys.executable, "-m", "app"]}
AS_OF = "2026-06-15"
ANSWERS: dict[str, Any] = {
    "date_of_birth": "1980-01-01",
    "sex_at_birth": "female",
    "conditions": ["migraine"],
    "prior_treatments_tried": "yes",
    "pregnant": "no",
    "breastfeeding": "no",
    "hypertension": "unsure",
    "systolic_bp": 150,
    "diastolic_bp": 80,
    "concussion": "no",
    "brain_injury": "no",
    "intracranial_pressure": "no",
    "heart_failure": "no",
    "schizophrenia": "no",
    "ketamine_before": "no",
    "heart_brain_history": ["none"],
    "other_medical_conditions": ["none"],
    "psychosis_or_mania": "no",
    "substance_use": "no",
}
runner = CliRunner()


def expected_result(raw: dict[str, Any], as_of: str = AS_OF) -> dict[str, Any]:
    ruleset = load_ruleset(PACK_DIR)
    day = date.fromisoformat(as_of)
    return evaluate(ruleset, validate_answers(ruleset, raw, as_of=day), as_of=day).to_dict()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")}
    return env | extra


def run_cli(
    entry: str, *args: str, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENTRY_POINTS[entry], *args],
        cwd=cwd,
        env=clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_json(path: Path, value: object) -> str:
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


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


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_evaluate_prints_the_result_json_for_a_file(entry: str, tmp_path: Path) -> None:
    file = write_json(tmp_path / "answers.json", ANSWERS)
    result = run_cli(entry, "evaluate", "--as-of", AS_OF, file, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output == expected_result(ANSWERS)
    assert set(output) == {"decision", "flags", "ruleset", "as_of"}
    assert output["decision"] == "needs_review"
    assert [(f["rule"], f["status"]) for f in output["flags"]] == [
        ("uncontrolled_blood_pressure", "unknown"),
        ("elevated_blood_pressure", "fired"),
    ]
    assert output["ruleset"]["id"] == "ketamine-infusion"
    assert output["ruleset"]["sha256"] == load_ruleset(PACK_DIR).sha256
    assert output["as_of"] == AS_OF
    assert result.stderr == ""


def test_evaluate_reads_standard_input_for_dash(tmp_path: Path) -> None:
    result = run_cli(
        "screening", "evaluate", "--as-of", AS_OF, "-", cwd=tmp_path, stdin=json.dumps(ANSWERS)
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected_result(ANSWERS)


def test_evaluate_exits_1_with_every_error_on_stderr(tmp_path: Path) -> None:
    raw = {
        "systolic_bp": "150",
        "sex_at_birth": "male",
        "pregnant": "no",
        "weight": 80,
        "date_of_birth": "1990-02-30",
    }
    file = write_json(tmp_path / "answers.json", raw)
    result = run_cli("screening", "evaluate", "--as-of", AS_OF, file, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    for item, code in [
        ("systolic_bp", "wrong_type"),
        ("pregnant", "item_disabled"),
        ("weight", "unknown_item"),
        ("date_of_birth", "invalid_date"),
    ]:
        assert any(
            line.startswith(f"error: {item}: ") and line.endswith(f"[{code}]")
            for line in result.stderr.splitlines()
        ), (item, result.stderr)
    assert "4 problem(s)" in result.stderr
    assert "1990-02-30" not in result.stderr


def test_evaluate_rejects_a_bad_as_of_with_exit_2(tmp_path: Path) -> None:
    file = write_json(tmp_path / "answers.json", ANSWERS)
    result = run_cli("screening", "evaluate", "--as-of", "2026-02-30", file, cwd=tmp_path)
    assert result.returncode == 2
    assert "--as-of" in result.stderr
    assert result.stdout == ""


def test_evaluate_rejects_an_unknown_questionnaire_with_exit_1(tmp_path: Path) -> None:
    file = write_json(tmp_path / "answers.json", ANSWERS)
    result = run_cli(
        "screening",
        "evaluate",
        "--questionnaire",
        "flu-vaccine",
        "--as-of",
        AS_OF,
        file,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "flu-vaccine" in result.stderr
    assert result.stdout == ""


class TestWithRunner:
    @pytest.mark.parametrize(
        ("date_of_birth", "as_of", "status"),
        [("2008-06-16", "2026-06-15", "fired"), ("2008-06-16", "2026-06-16", None)],
    )
    def test_as_of_decides_age(
        self, isolated: Path, date_of_birth: str, as_of: str, status: str | None
    ) -> None:
        raw = ANSWERS | {"date_of_birth": date_of_birth}
        file = write_json(isolated / "a.json", raw)
        result = runner.invoke(app, ["evaluate", "--as-of", as_of, file])
        assert result.exit_code == 0, result.output
        output = json.loads(result.stdout)
        assert output["as_of"] == as_of
        flags = {flag["rule"]: flag["status"] for flag in output["flags"]}
        assert flags.get("under_18") == status
        assert output == expected_result(raw, as_of)

    def test_stdin_via_runner(self, isolated: Path) -> None:
        result = runner.invoke(app, ["evaluate", "--as-of", AS_OF, "-"], input=json.dumps(ANSWERS))
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == expected_result(ANSWERS)

    def test_request_body_form_is_accepted(self, isolated: Path) -> None:
        body = {"questionnaire": "ketamine-infusion-candidacy", "answers": ANSWERS}
        result = runner.invoke(
            app, ["evaluate", "--as-of", AS_OF, write_json(isolated / "b", body)]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == expected_result(ANSWERS)

    def test_as_of_in_the_file_is_used_and_the_option_wins(self, isolated: Path) -> None:
        raw = ANSWERS | {"date_of_birth": "2008-06-16"}
        file = write_json(isolated / "b", {"answers": raw, "as_of": "2026-06-15"})
        from_file = runner.invoke(app, ["evaluate", file])
        assert from_file.exit_code == 0, from_file.output
        assert json.loads(from_file.stdout) == expected_result(raw, "2026-06-15")
        overridden = runner.invoke(app, ["evaluate", "--as-of", "2026-06-16", file])
        assert json.loads(overridden.stdout) == expected_result(raw, "2026-06-16")

    @pytest.mark.parametrize("as_of", ["2026-02-30", 20260615])
    def test_bad_as_of_in_the_file_exits_1(self, isolated: Path, as_of: object) -> None:
        file = write_json(isolated / "b", {"answers": ANSWERS, "as_of": as_of})
        result = runner.invoke(app, ["evaluate", file])
        assert result.exit_code == 1
        assert '"as_of" must be a date written YYYY-MM-DD' in result.stderr
        assert result.stdout == ""

    def test_request_body_with_unknown_questionnaire_is_rejected(self, isolated: Path) -> None:
        body = {"questionnaire": "other-pack", "answers": ANSWERS}
        result = runner.invoke(
            app, ["evaluate", "--as-of", AS_OF, write_json(isolated / "b", body)]
        )
        assert result.exit_code == 1
        assert "other-pack" in result.stderr

    def test_matching_questionnaire_option_is_accepted(self, isolated: Path) -> None:
        file = write_json(isolated / "a.json", ANSWERS)
        args = ["evaluate", "--questionnaire", "ketamine-infusion-candidacy", "--as-of", AS_OF]
        result = runner.invoke(app, [*args, file])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["decision"] == "needs_review"

    def test_empty_answers_need_review(self, isolated: Path) -> None:
        result = runner.invoke(app, ["evaluate", "--as-of", AS_OF, "-"], input="{}")
        assert result.exit_code == 0, result.output
        output = json.loads(result.stdout)
        assert output["decision"] == "needs_review"
        assert len(output["flags"]) == 25
        assert {flag["status"] for flag in output["flags"]} == {"unknown"}

    def test_exclusion_gives_not_candidate(self, isolated: Path) -> None:
        raw = ANSWERS | {"heart_failure": "yes"}
        result = runner.invoke(app, ["evaluate", "--as-of", AS_OF, "-"], input=json.dumps(raw))
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["decision"] == "not_candidate"

    def test_errors_never_echo_the_submitted_values(self, isolated: Path) -> None:
        raw = {"systolic_bp": 98765, "sex_at_birth": "Jane-Doe-secret", "mystery": "PHI-4242"}
        result = runner.invoke(app, ["evaluate", "--as-of", AS_OF, "-"], input=json.dumps(raw))
        assert result.exit_code == 1
        assert "[out_of_range]" in result.stderr
        assert "[bad_choice]" in result.stderr
        assert "[unknown_item]" in result.stderr
        for secret in ("98765", "Jane-Doe", "PHI-4242"):
            assert secret not in result.stderr
            assert secret not in result.stdout

    def test_answers_that_are_not_an_object_are_rejected(self, isolated: Path) -> None:
        result = runner.invoke(app, ["evaluate", "--as-of", AS_OF, "-"], input="[1, 2]")
        assert result.exit_code == 1
        assert "[not_an_object]" in result.stderr

    def test_invalid_json_is_rejected(self, isolated: Path) -> None:
        result = runner.invoke(app, ["evaluate", "--as-of", AS_OF, "-"], input="{not json")
        assert result.exit_code == 1
        assert "not valid JSON" in result.stderr
        assert result.stdout == ""

    def test_missing_file_is_rejected(self, isolated: Path) -> None:
        result = runner.invoke(app, ["evaluate", "--as-of", AS_OF, str(isolated / "none.json")])
        assert result.exit_code == 1
        assert "cannot read" in result.stderr

    def test_bad_as_of_exits_2(self, isolated: Path) -> None:
        result = runner.invoke(app, ["evaluate", "--as-of", "15/06/2026", "-"], input="{}")
        assert result.exit_code == 2
        assert "--as-of" in result.stderr

    def test_future_date_is_judged_against_as_of(self, isolated: Path) -> None:
        raw = {"date_of_birth": "2026-06-16"}
        result = runner.invoke(app, ["evaluate", "--as-of", AS_OF, "-"], input=json.dumps(raw))
        assert result.exit_code == 1
        assert "[future_date]" in result.stderr
        later = runner.invoke(
            app, ["evaluate", "--as-of", "2026-06-16", "-"], input=json.dumps(raw)
        )
        assert later.exit_code == 0, later.output

    def test_without_as_of_the_result_is_dated_today(self, isolated: Path) -> None:
        # The only test that reads the clock: it checks the default, not a decision.
        result = runner.invoke(app, ["evaluate", "-"], input=json.dumps(ANSWERS))
        assert result.exit_code == 0, result.output
        as_of = date.fromisoformat(json.loads(result.stdout)["as_of"])
        assert abs(as_of - datetime.now(UTC).date()) <= timedelta(days=1)

    def test_broken_configured_pack_is_reported(
        self, isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pack = tmp_path / "pack"
        shutil.copytree(PACK_DIR, pack)
        (pack / "rules/heart_failure.yaml").unlink()
        monkeypatch.setenv("SCREENING_RULES_DIR", str(pack))
        get_settings.cache_clear()
        result = runner.invoke(app, ["evaluate", "--as-of", AS_OF, "-"], input="{}")
        assert result.exit_code == 1
        assert "heart_failure.yaml" in result.stderr
        assert result.stdout == ""

    def test_configured_pack_is_used(
        self, isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pack = tmp_path / "pack"
        shutil.copytree(PACK_DIR, pack)
        text = (pack / "pack.yaml").read_text(encoding="utf-8")
        (pack / "pack.yaml").write_text(text.replace('"2.0.0"', '"9.9.9"'), encoding="utf-8")
        monkeypatch.setenv("SCREENING_RULES_DIR", str(pack))
        get_settings.cache_clear()
        result = runner.invoke(app, ["evaluate", "--as-of", AS_OF, "-"], input="{}")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["ruleset"]["version"] == "9.9.9"
