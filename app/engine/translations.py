"""Questionnaire translations: the patient-facing strings of a pack and their checked catalogues.

A catalogue lives beside the pack as ``translations/<language>.yaml``. Each entry gives the
translated text and the sha256 of the English source it translates, so a changed English
string makes its translation *stale* until a translator reviews it. Translations never change
the pack's sha256: they are not part of the canonical content and do not affect decisions.
"""

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.engine.errors import RulesetError
from app.engine.model import ChoiceItem, MultiChoiceItem, Questionnaire
from app.engine.yamlsource import parse_yaml

TRANSLATIONS_DIR = "translations"
_HEX = frozenset("0123456789abcdef")


def source_hash(text: str) -> str:
    """Return the sha256 (hex) of an English source string, as written beside a translation."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def source_strings(questionnaire: Questionnaire) -> dict[str, str]:
    """Return every patient-facing English string of a questionnaire, by translation key.

    Keys: ``title``, ``groups.<group>.title``, ``items.<item>.text|help|why`` and
    ``items.<item>.options.<value>``.
    """
    return dict(_walk(questionnaire))


def _walk(questionnaire: Questionnaire) -> Iterator[tuple[str, str]]:
    yield "title", questionnaire.title
    for group in questionnaire.groups:
        yield f"groups.{group.id}.title", group.title
        for item in group.items:
            prefix = f"items.{item.id}"
            yield f"{prefix}.text", item.text
            if item.help is not None:
                yield f"{prefix}.help", item.help
            if item.why is not None:
                yield f"{prefix}.why", item.why
            if isinstance(item, ChoiceItem | MultiChoiceItem):
                for option in item.options:
                    yield f"{prefix}.options.{option.value}", option.text


@dataclass(frozen=True, slots=True)
class Entry:
    """One translated string and the sha256 of the English text it was translated from."""

    text: str
    source_sha256: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The translations of one language, by key."""

    language: str
    entries: Mapping[str, Entry]

    def text(self, key: str, english: str) -> str:
        """Return the translation of ``english`` if it is current, else the English text.

        A stale translation (its English source changed since) is never shown: the English
        wording is the one a physician reviewed.
        """
        entry = self.entries.get(key)
        if entry is None or entry.source_sha256 != source_hash(english):
            return english
        return entry.text


@dataclass(frozen=True, slots=True)
class TranslationProblem:
    """A string without a current translation: ``missing``, ``stale`` or ``unknown`` key."""

    language: str
    key: str
    kind: str

    def __str__(self) -> str:
        reasons = {
            "missing": "has no translation",
            "stale": "changed in English since it was translated (update the text and source)",
            "unknown": "is translated but is not a string of the questionnaire",
        }
        return f"{self.language}: {self.key} {reasons[self.kind]}"


def load_catalogue(path: Path) -> Catalogue:
    """Read one ``translations/<language>.yaml`` file.

    Raises:
        RulesetError: if the file is not valid YAML or not shaped as a catalogue.
    """
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"), path.name).data
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise RulesetError([f"{path.name}: cannot read translations: {error}"]) from None
    problems: list[str] = []
    if not isinstance(data, dict) or set(data) != {"language", "strings"}:
        raise RulesetError([f"{path.name}: expected exactly the keys 'language' and 'strings'"])
    language, strings = data["language"], data["strings"]
    if not isinstance(language, str) or language != path.stem:
        problems.append(f"{path.name}: language must be {path.stem!r}, the file's name")
    if not isinstance(strings, dict):
        raise RulesetError([*problems, f"{path.name}: strings must be a mapping"])
    entries: dict[str, Entry] = {}
    for key, value in strings.items():
        entry = _entry(value)
        if entry is None:
            problems.append(
                f"{path.name}: {key}: expected {{text: ..., source: <sha256 of the English>}}"
            )
        else:
            entries[str(key)] = entry
    if problems:
        raise RulesetError(problems)
    return Catalogue(language=path.stem, entries=entries)


def _entry(value: object) -> Entry | None:
    if not isinstance(value, dict) or set(value) != {"text", "source"}:
        return None
    text, source = value["text"], value["source"]
    if not isinstance(text, str) or not text.strip() or not isinstance(source, str):
        return None
    if len(source) != 64 or not set(source) <= _HEX:
        return None
    return Entry(text=text, source_sha256=source)


def load_translations(pack_dir: Path) -> dict[str, Catalogue]:
    """Load every catalogue of a pack (none if it has no ``translations`` folder).

    Raises:
        RulesetError: with every problem of every catalogue.
    """
    folder = pack_dir / TRANSLATIONS_DIR
    catalogues: dict[str, Catalogue] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            catalogues[path.stem] = load_catalogue(path)
        except RulesetError as error:
            problems.extend(error.problems)
    if problems:
        raise RulesetError(problems)
    return catalogues


def check_translations(
    questionnaire: Questionnaire, catalogues: Mapping[str, Catalogue]
) -> list[TranslationProblem]:
    """Return every missing, stale and unknown translation of every catalogue."""
    sources = source_strings(questionnaire)
    problems = []
    for language, catalogue in sorted(catalogues.items()):
        for key, english in sources.items():
            entry = catalogue.entries.get(key)
            if entry is None:
                problems.append(TranslationProblem(language, key, "missing"))
            elif entry.source_sha256 != source_hash(english):
                problems.append(TranslationProblem(language, key, "stale"))
        problems.extend(
            TranslationProblem(language, key, "unknown")
            for key in catalogue.entries
            if key not in sources
        )
    return problems
