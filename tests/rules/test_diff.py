"""`diff_rulesets`: one change per edit, of the right kind, with a readable line (issue 13)."""

import shutil
from pathlib import Path

import pytest

from app.engine import diff, load_ruleset
from app.engine.diff import diff_rulesets
from app.engine.translations import load_translations

PACK = Path(__file__).resolve().parents[2] / "rules" / "ketamine-infusion"
# (file, old text, new text, expected kind, expected line)
GLAUCOMA = "          - {value: glaucoma, text: Glaucoma or high pressure inside the eye}\n"
OTHER = "          - {value: other, text: Something else}\n"
EDITS = [
    ("pack.yaml", 'tests_as_of: "2026-06-15"', 'tests_as_of: "2026-06-16"', "pack_tests_as_of",
     "pack tests_as_of: 2026-06-15 → 2026-06-16"),
    ("pack.yaml", "  - arrhythmia\n  - seizure_disorder\n",
     "  - seizure_disorder\n  - arrhythmia\n", "rule_order", None),
    ("rules/heart_failure.yaml", "title: Heart failure", "title: Heart failure (any)",
     "rule_title", "heart_failure: title Heart failure → Heart failure (any)"),
    ("rules/heart_failure.yaml", "rationale: >-\n", "rationale: >-\n  Reviewed 2026.\n",
     "rule_rationale", "heart_failure: rationale re-worded"),
    ("rules/arrhythmia.yaml", "references:\n", "references:\n  - \"A new source\"\n",
     "rule_references", "arrhythmia: references changed"),
    ("rules/arrhythmia.yaml", "tests:\n",
     "tests:\n  - {name: extra, answers: {}, expect: unknown}\n", "rule_tests", None),
    ("rules/heart_failure.yaml", 'when: {item: heart_failure, is: "yes"}',
     'when: {item: heart_failure, in: ["yes"]}', "rule_condition", None),
    ("rules/elevated_blood_pressure.yaml", "at_least: 140", "at_least: 135", "rule_threshold",
     "elevated_blood_pressure: systolic_bp at_least 140 → 135"),
    ("questionnaire.yaml", "        min: 50\n", "        min: 60\n", "item_setting",
     "systolic_bp: min 50 → 60"),
    ("questionnaire.yaml", OTHER, "", "option_removed", "conditions: option removed: other"),
    ("questionnaire.yaml", GLAUCOMA, GLAUCOMA + "          - {value: asthma, text: Asthma}\n",
     "option_added", "other_medical_conditions: option added: asthma ('Asthma')"),
]  # fmt: skip


def _edit(tmp_path: Path, file: str, old: str, new: str) -> Path:
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    path = pack / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (file, old)
    path.write_text(text.replace(old, new), encoding="utf-8")
    return pack


@pytest.mark.parametrize(("file", "old", "new", "kind", "line"), EDITS, ids=[e[3] for e in EDITS])
def test_one_edit_gives_one_change(
    tmp_path: Path, file: str, old: str, new: str, kind: str, line: str | None
) -> None:
    changed = _edit(tmp_path, file, old, new)
    result = diff_rulesets(load_ruleset(PACK), load_ruleset(changed))
    kinds = [change.kind for change in result.changes]
    assert kinds == [kind]
    if line is not None:
        assert result.changes[0].text == line
        assert result.lines()[1] == f"  {line}"


def test_a_removed_item_and_a_changed_translation(tmp_path: Path) -> None:
    pack = _edit(tmp_path, "translations/es.yaml", "Sobre usted", "Acerca de usted")
    (pack / "rules" / "seizure_disorder.yaml").unlink()
    text = (pack / "pack.yaml").read_text(encoding="utf-8")
    (pack / "pack.yaml").write_text(text.replace("  - seizure_disorder\n", ""), encoding="utf-8")
    result = diff_rulesets(
        load_ruleset(PACK),
        load_ruleset(pack),
        old_translations=load_translations(PACK),
        new_translations=load_translations(pack),
    )
    texts = [change.text for change in result.changes]
    assert "rule removed: seizure_disorder (review)" in texts
    assert "translation es groups.about_you.title changed" in texts
    assert not result.is_empty
    assert result.to_dict()["changes"][0]["kind"] == "rule_removed"


def test_a_removed_item_is_named(tmp_path: Path) -> None:
    v1 = PACK.parent / "ketamine-infusion-v1"
    result = diff_rulesets(load_ruleset(PACK), load_ruleset(v1))
    removed = {change.subject for change in result.changes if change.kind == "item_removed"}
    assert removed == {
        "heart_brain_history",
        "heart_brain_recent",
        "other_medical_conditions",
        "thyroid_controlled",
        "psychosis_or_mania",
        "substance_use",
        "ketamine_allergy",
    }
    assert diff_rulesets(load_ruleset(v1), load_ruleset(v1)).is_empty


def test_thresholds_under_not_are_compared_value_by_value() -> None:
    old = {"not": {"any": [{"item": "a", "at_least": 1}, {"item": "b", "is": "yes"}]}}
    new = {"not": {"any": [{"item": "a", "at_least": 2}, {"item": "b", "is": "yes"}]}}
    [change] = diff._condition_changes("r", old, new)
    assert (change.kind, change.text) == ("rule_threshold", "r: a at_least 1 → 2")
