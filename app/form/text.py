"""Patient-facing text in the page's language: page furniture and the questionnaire's strings.

Page furniture comes from ``messages.yaml`` beside this file; questions, help, "why we ask"
lines and options come from the rule pack's translation catalogue (``app.engine.translations``),
falling back to the English of the questionnaire when a translation is missing or stale.
"""

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.engine.model import Group, Item, Option
from app.engine.translations import Catalogue

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"
MESSAGES_FILE = Path(__file__).with_name("messages.yaml")


@functools.cache
def messages() -> Mapping[str, Mapping[str, str]]:
    """The page furniture catalogue: key → language → text."""
    data = yaml.safe_load(MESSAGES_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def pick_language(requested: str | None, fallback: str, accept_language: str = "") -> str:
    """The page language: an explicit request, else the invitation's, else the browser's."""
    if requested in LANGUAGES:
        return requested
    if fallback in LANGUAGES:
        return fallback
    first = accept_language.split(",")[0].split(";")[0].strip().lower()
    return first[:2] if first[:2] in LANGUAGES else DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class Text:
    """The strings of one page language."""

    language: str
    catalogue: Catalogue | None = None

    def __call__(self, key: str, **params: object) -> str:
        """A furniture string, with ``{placeholders}`` filled from ``params``."""
        template = messages()[key][self.language]
        return template.format(**params) if params else template

    def other_languages(self) -> list[tuple[str, str]]:
        """(code, own name) of every other language, for the language switch."""
        return [
            (code, messages()["language.name"][code]) for code in LANGUAGES if code != self.language
        ]

    def _pack(self, key: str, english: str) -> str:
        return english if self.catalogue is None else self.catalogue.text(key, english)

    def group_title(self, group: Group) -> str:
        """The group's title."""
        return self._pack(f"groups.{group.id}.title", group.title)

    def question(self, item: Item) -> str:
        """The item's question text."""
        return self._pack(f"items.{item.id}.text", item.text)

    def help(self, item: Item) -> str | None:
        """The item's help text, if any."""
        return None if item.help is None else self._pack(f"items.{item.id}.help", item.help)

    def why(self, item: Item) -> str | None:
        """The item's "why we ask" line, if any."""
        return None if item.why is None else self._pack(f"items.{item.id}.why", item.why)

    def option(self, item: Item, option: Option) -> str:
        """The text of one of the item's options."""
        return self._pack(f"items.{item.id}.options.{option.value}", option.text)

    def unit(self, unit: str) -> str:
        """A unit such as mmHg or months, translated when the catalogue knows it."""
        known = messages().get(f"unit.{unit}")
        return known[self.language] if known else unit
