"""`screening rules diff OLD NEW`: what changed between two packs, as text and JSON (issue 13)."""

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.engine import load_ruleset
from app.engine.diff import describe_condition
from app.rulepack.service import store_rule_pack
from tests.cli.conftest import Invoke

RULES_ROOT = Path(__file__).resolve().parents[2] / "rules"
V1, V2 = RULES_ROOT / "ketamine-infusion-v1", RULES_ROOT / "ketamine-infusion"


def edited(tmp_path: Path, file: str, old: str, new: str) -> Path:
    pack = tmp_path / "candidate"
    if not pack.exists():
        shutil.copytree(V2, pack)
    path = pack / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (file, old)
    path.write_text(text.replace(old, new), encoding="utf-8")
    return pack


def diff_lines(invoke: Invoke, old: Path | str, new: Path | str) -> list[str]:
    result = invoke("rules", "diff", str(old), str(new))
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()[1:]


def test_a_threshold_change_is_one_readable_line(invoke: Invoke, tmp_path: Path) -> None:
    pack = edited(
        tmp_path, "rules/uncontrolled_blood_pressure.yaml", "at_least: 160", "at_least: 150"
    )
    assert diff_lines(invoke, V2, pack) == [
        "  uncontrolled_blood_pressure: systolic_bp at_least 160 → 150"
    ]


def test_the_same_pack_has_no_changes(invoke: Invoke) -> None:
    assert diff_lines(invoke, V2, V2) == ["  same"]


def test_severity_option_wording_gate_and_a_removed_rule(invoke: Invoke, tmp_path: Path) -> None:
    edited(tmp_path, "rules/seizure_disorder.yaml", "severity: review", "severity: exclude")
    edited(tmp_path, "questionnaire.yaml", "text: Seizures or epilepsy}", "text: Epilepsy or fits}")
    edited(tmp_path, "questionnaire.yaml", "contains_any: [overactive_thyroid]}",
           "contains_any: [overactive_thyroid, seizures]}")  # fmt: skip
    pack = edited(tmp_path, "pack.yaml", "  - arrhythmia\n", "")
    (pack / "rules" / "arrhythmia.yaml").unlink()
    lines = diff_lines(invoke, V2, pack)
    assert "  rule removed: arrhythmia (review)" in lines
    assert "  seizure_disorder: severity review → exclude" in lines
    assert (
        "  other_medical_conditions: option seizures re-worded: 'Seizures or epilepsy' → "
        "'Epilepsy or fits'"
    ) in lines
    assert (
        "  thyroid_controlled: asked when other_medical_conditions includes any of "
        "overactive_thyroid → other_medical_conditions includes any of overactive_thyroid, seizures"
    ) in lines


def test_v1_to_v2_lists_the_new_rules_items_pages_and_translations(invoke: Invoke) -> None:
    result = invoke("rules", "diff", str(V1), str(V2), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["old"]["version"] == "1.0.0"
    assert document["new"]["version"] == "2.0.0"
    kinds: dict[str, set[str]] = {}
    for change in document["changes"]:
        kinds.setdefault(change["kind"], set()).add(change["subject"])
    assert len(kinds["rule_added"]) == 14
    assert len(kinds["item_added"]) == 7
    assert "rule_removed" not in kinds
    assert {"ketamine_before.text", "ketamine_before.help"} <= kinds["item_reworded"]
    assert "schizophrenia" in kinds["item_page"]
    assert "es:items.ketamine_allergy.text" in kinds["translation_added"]
    assert "es:groups.heart_and_mind.title" in kinds["translation_removed"]


def test_a_stored_pack_is_compared_by_its_hash(invoke: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate.upgrade(migrate.make_config(database_url=url))
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        store_rule_pack(session, ruleset=load_ruleset(V1), now=datetime.now(UTC))
    engine.dispose()
    result = invoke("rules", "diff", load_ruleset(V1).sha256, str(V2))
    assert result.exit_code == 0, result.output
    assert (
        "  rule added: previous_stroke (exclude): heart_brain_history includes any of stroke"
        in (result.stdout.splitlines())
    )
    assert "translations are compared only between two directories" in result.stderr


@pytest.mark.parametrize(
    ("argument", "message"),
    [("0" * 64, "no rule pack with sha256"), ("no-such-dir", "invalid rule pack")],
)
def test_an_unknown_pack_is_a_clear_error(invoke: Invoke, tmp_path: Path, argument: str,
                                          message: str) -> None:  # fmt: skip
    migrate.upgrade(migrate.make_config(database_url=f"sqlite:///{tmp_path / 'cli.db'}"))
    result = invoke("rules", "diff", argument, str(V2))
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_conditions_are_described_in_words() -> None:
    raw = {
        "any": [
            {"item": "systolic_bp", "at_least": 160},
            {"all": [{"item": "hypertension", "is": "yes"}, {"not": {"item": "x", "in": [1, 2]}}]},
        ]
    }
    assert describe_condition(raw) == (
        'systolic_bp at_least 160 or (hypertension is "yes" and not (x is one of 1, 2))'
    )
