"""`screening rules check` fails on a missing or stale translation."""

import shutil
from pathlib import Path

from typer.testing import CliRunner

from app.cli import app
from app.settings import default_rules_path

runner = CliRunner()


def _copy(tmp_path: Path) -> Path:
    pack = tmp_path / "pack"
    shutil.copytree(default_rules_path(), pack)
    return pack


def test_check_passes_with_complete_translations(tmp_path: Path) -> None:
    result = runner.invoke(app, ["rules", "check", str(_copy(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "TRANSLATION" not in result.output


def test_check_fails_on_a_stale_translation(tmp_path: Path) -> None:
    pack = _copy(tmp_path)
    questionnaire = pack / "questionnaire.yaml"
    text = questionnaire.read_text(encoding="utf-8")
    questionnaire.write_text(text.replace("text: Are you pregnant?", "text: Are you pregnant now?"))
    result = runner.invoke(app, ["rules", "check", str(pack)])
    assert result.exit_code == 1
    assert "TRANSLATION es: items.pregnant.text changed in English" in result.output


def test_check_fails_on_a_missing_translation(tmp_path: Path) -> None:
    pack = _copy(tmp_path)
    catalogue = pack / "translations" / "es.yaml"
    lines = catalogue.read_text(encoding="utf-8").splitlines()
    start = lines.index("  items.schizophrenia.why:")
    catalogue.write_text("\n".join(lines[:start] + lines[start + 3 :]) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(pack), "--json"])
    assert result.exit_code == 1
    assert "es: items.schizophrenia.why has no translation" in result.output
