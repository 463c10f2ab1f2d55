"""Every patient-facing string exists in every language."""

import re
import string
from pathlib import Path

import pytest

from app.engine import Ruleset
from app.engine.translations import check_translations, load_translations
from app.form.text import LANGUAGES, Text, messages
from app.settings import default_rules_path


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(messages()))
def test_every_furniture_string_has_every_language(key: str) -> None:
    texts = messages()[key]
    assert set(texts) == set(LANGUAGES)
    assert all(text.strip() for text in texts.values())
    assert len({frozenset(_fields(text)) for text in texts.values()}) == 1, "placeholders differ"


def test_every_question_has_a_current_spanish_translation(ruleset: Ruleset) -> None:
    catalogues = load_translations(Path(default_rules_path()))
    assert set(catalogues) == {"es"}
    assert check_translations(ruleset.questionnaire, catalogues) == []


def test_answer_labels_quoted_in_spanish_hints_are_the_labels_the_form_shows(
    ruleset: Ruleset,
) -> None:
    catalogue = load_translations(Path(default_rules_path()))["es"]
    spanish = Text("es", catalogue)
    answers = {spanish(f"answer.{value}") for value in ("yes", "no", "unsure")}
    quoted = 0
    for compiled in ruleset.items.values():
        item = compiled.item
        options = {spanish.option(item, o) for o in getattr(item, "options", ())}
        for line in (spanish.help(item), spanish.why(item), spanish.question(item)):
            for label in re.findall(r"«([^»]+)»", line or ""):
                quoted += 1
                assert label in answers | options, (item.id, label)
    assert quoted >= 1  # the pregnancy hint: elija «No lo sé»
