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


GOOD_SHA = "a" * 64


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("language: es\nstrings: [1]\n", "strings must be a mapping"),
        ("- just\n- a list\n", "expected exactly the keys 'language' and 'strings'"),
        ("language: es\nstrings: {k: {text: x, source: 7}}\n", "k: expected {text: ..."),
        ("language: es\nstrings: {k: {text: '  ', source: " + GOOD_SHA + "}}\n", "k: expected"),
        ("language: es\nstrings: {k: {text: x, source: abc}}\n", "k: expected"),
        ("language: es\nstrings: {k: {text: x, source: " + "g" * 64 + "}}\n", "k: expected"),
        ("language: es\nstrings: {k: [\n", "cannot read translations"),
    ],
    ids=["strings-list", "not-a-mapping", "source-not-text", "blank-text", "short-sha",
         "not-hex", "yaml-syntax"],
)  # fmt: skip
def test_each_malformed_catalogue_shape_is_reported(
    pack: Path, content: str, expected: str
) -> None:
    (pack / "translations" / "es.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(RulesetError) as raised:
        load_translations(pack)
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems


def test_an_item_without_help_has_no_help_string_to_translate(pack: Path) -> None:
    questionnaire = pack / "questionnaire.yaml"
    text = questionnaire.read_text(encoding="utf-8")
    start = text.index("      - id: heart_failure")
    help_line = next(line for line in text[start:].splitlines() if line.strip().startswith("help:"))
    _edit(questionnaire, help_line + "\n", "")
    strings = source_strings(load_ruleset(pack).questionnaire)
    assert "items.heart_failure.text" in strings
    assert "items.heart_failure.help" not in strings


def test_a_current_translation_is_shown_and_a_stale_one_falls_back_to_english() -> None:
    catalogue = Catalogue(
        language="es",
        entries={"items.x.text": Entry(text="¿Está embarazada?", source_sha256=source_hash("Q?"))},
    )
    assert catalogue.text("items.x.text", "Q?") == "¿Está embarazada?"
    assert catalogue.text("items.x.text", "Changed question?") == "Changed question?"
    assert catalogue.text("items.unknown.text", "Other?") == "Other?"
