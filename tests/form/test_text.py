"""Every patient-facing string exists in every language."""

import string
from pathlib import Path

import pytest

from app.engine import Ruleset
from app.engine.translations import check_translations, load_translations
from app.form.text import LANGUAGES, messages
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
