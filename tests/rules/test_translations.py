"""Questionnaire translations: missing, stale and unknown entries; they never change the sha256."""

import shutil
from pathlib import Path

import pytest

from app.engine import RulesetError, load_ruleset
from app.engine.translations import (
    Catalogue,
    Entry,
    check_translations,
    load_translations,
    source_hash,
    source_strings,
)
from app.settings import default_rules_path

PACK = default_rules_path()


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    copy = tmp_path / "pack"
    shutil.copytree(PACK, copy)
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_source_strings_cover_questions_help_why_and_options() -> None:
    strings = source_strings(load_ruleset(PACK).questionnaire)
    assert strings["items.pregnant.text"] == "Are you pregnant?"
    assert "items.pregnant.why" in strings
    assert strings["items.sex_at_birth.options.male"] == "Male"
    assert strings["groups.blood_pressure.title"] == "Blood pressure"


def test_a_changed_english_question_makes_its_translation_stale(pack: Path) -> None:
    _edit(pack / "questionnaire.yaml", "text: Are you pregnant?", "text: Are you pregnant now?")
    ruleset = load_ruleset(pack)
    problems = check_translations(ruleset.questionnaire, load_translations(pack))
    assert [(p.key, p.kind) for p in problems] == [("items.pregnant.text", "stale")]
    assert "changed in English" in str(problems[0])
    # A stale translation is never shown: the page falls back to the reviewed English.
    catalogue = load_translations(pack)["es"]
    assert catalogue.text("items.pregnant.text", "Are you pregnant now?") == "Are you pregnant now?"


def test_missing_and_unknown_translations_are_reported() -> None:
    questionnaire = load_ruleset(PACK).questionnaire
    english = "Are you pregnant?"
    catalogue = Catalogue("es", {
        "items.pregnant.text": Entry("¿Está embarazada?", source_hash(english)),
        "items.no_such_item.text": Entry("?", source_hash("?")),
    })  # fmt: skip
    problems = check_translations(questionnaire, {"es": catalogue})
    kinds = {(p.key, p.kind) for p in problems}
    assert ("items.no_such_item.text", "unknown") in kinds
    assert ("items.breastfeeding.text", "missing") in kinds
    assert ("items.pregnant.text", "missing") not in kinds


def test_translations_do_not_change_the_pack_sha256(pack: Path) -> None:
    before = load_ruleset(pack).sha256
    _edit(pack / "translations" / "es.yaml", "¿Está embarazada?", "¿Está usted embarazada?")
    assert load_ruleset(pack).sha256 == before
    shutil.rmtree(pack / "translations")
    assert load_ruleset(pack).sha256 == before


def test_a_malformed_catalogue_is_a_ruleset_error(pack: Path) -> None:
    (pack / "translations" / "es.yaml").write_text("language: fr\nstrings: {a: {text: x}}\n")
    with pytest.raises(RulesetError) as raised:
        load_translations(pack)
    assert len(raised.value.problems) == 2
