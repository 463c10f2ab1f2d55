"""A rule pack's questionnaire as a FHIR R4 (SDC) Questionnaire resource.

linkId = item id (groups keep their group id); yes/no and choice items are ``choice`` items
whose answer options are Codings of :data:`ANSWER_SYSTEM`; checklists repeat; integers carry
UCUM units and min/max; every enable_when is exported as an SDC ``enableWhenExpression``
(``app/fhir/expression.py`` says why plain ``enableWhen`` cannot carry our three-valued rule).
Spanish (and any other catalogue) travels as FHIR translation extensions.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from app.engine import Ruleset
from app.engine.model import (
    ChoiceItem,
    Group,
    IntegerItem,
    Item,
    MultiChoiceItem,
    YesNoUnsureItem,
)
from app.engine.translations import Catalogue
from app.fhir import expression

ANSWER_SYSTEM = "urn:candidacy-screening:answer"
"""The code system of every answer option: the codes are our option values."""
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition"
EXT = "http://hl7.org/fhir/StructureDefinition"
UCUM = "http://unitsofmeasure.org"
_UCUM_CODES = {"mmHg": "mm[Hg]", "months": "mo", "years": "a", "days": "d", "kg": "kg"}
# The words the patient form shows for yes/no answers (app/form/messages.yaml).
_YES_NO_TEXT = {
    "yes": {"en": "Yes", "es": "Sí"},
    "no": {"en": "No", "es": "No"},
    "unsure": {"en": "I'm not sure", "es": "No estoy seguro/a"},
}
_FHIR_TYPES = {
    "yes_no": "choice",
    "yes_no_unsure": "choice",
    "choice": "choice",
    "multi_choice": "choice",
    "integer": "integer",
    "date": "date",
}


def canonical_url(base_url: str, questionnaire_id: str) -> str:
    """The Questionnaire's canonical URL under this service's base URL."""
    return f"{base_url.rstrip('/')}/fhir/Questionnaire/{questionnaire_id}"


def export(
    ruleset: Ruleset, *, catalogues: Mapping[str, Catalogue], base_url: str
) -> dict[str, Any]:
    """Return the questionnaire of ``ruleset`` as a FHIR R4 Questionnaire (JSON-ready dict).

    ``version`` is the pack's sha256: the exact content a QuestionnaireResponse answers.
    """
    questionnaire = ruleset.questionnaire
    translate = _Translator(catalogues)
    return {
        "resourceType": "Questionnaire",
        "id": questionnaire.id,
        "meta": {"profile": [f"{SDC}/sdc-questionnaire"]},
        "url": canonical_url(base_url, questionnaire.id),
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:sha256:{ruleset.sha256}"}],
        "version": ruleset.sha256,
        "name": "".join(part.title() for part in questionnaire.id.split("-")),
        "title": questionnaire.title,
        **translate.extension("_title", "title", questionnaire.title),
        "status": "active",
        "subjectType": ["Patient"],
        "language": "en",
        "description": f"{ruleset.title} (rule pack {ruleset.id} {ruleset.version}).",
        "item": [_group(ruleset, group, translate) for group in questionnaire.groups],
    }


class _Translator:
    """Builds ``_text``-style primitive extensions from the loaded catalogues."""

    def __init__(self, catalogues: Mapping[str, Catalogue]) -> None:
        self.catalogues = catalogues

    def extension(self, field: str, key: str, english: str) -> dict[str, Any]:
        translations = {
            language: catalogue.text(key, english)
            for language, catalogue in sorted(self.catalogues.items())
        }
        return self.of(field, translations, english)

    def of(self, field: str, translations: Mapping[str, str], english: str) -> dict[str, Any]:
        extensions = [
            {
                "url": f"{EXT}/translation",
                "extension": [
                    {"url": "lang", "valueCode": language},
                    {"url": "content", "valueString": text},
                ],
            }
            for language, text in translations.items()
            if language != "en" and text != english
        ]
        return {field: {"extension": extensions}} if extensions else {}


def _group(ruleset: Ruleset, group: Group, translate: _Translator) -> dict[str, Any]:
    return {
        "linkId": group.id,
        "text": group.title,
        **translate.extension("_text", f"groups.{group.id}.title", group.title),
        "type": "group",
        "item": [_item(ruleset, item, translate) for item in group.items],
    }


def _item(ruleset: Ruleset, item: Item, translate: _Translator) -> dict[str, Any]:
    prefix = f"items.{item.id}"
    extensions = list(_extensions(ruleset, item))
    exported: dict[str, Any] = {
        **({"extension": extensions} if extensions else {}),
        "linkId": item.id,
        "text": item.text,
        **translate.extension("_text", f"{prefix}.text", item.text),
        "type": _FHIR_TYPES[item.type],
        "required": item.required,
        "repeats": isinstance(item, MultiChoiceItem),
    }
    options = list(_options(item, translate))
    if options:
        exported["answerOption"] = options
    notes = [
        _display(item.id, kind, control, text, translate.extension("_text", key, text))
        for kind, control, text, key in (
            ("help", "help", item.help, f"{prefix}.help"),
            ("why", "flyover", item.why, f"{prefix}.why"),
        )
        if text is not None
    ]
    if notes:
        exported["item"] = notes
    return exported


def _extensions(ruleset: Ruleset, item: Item) -> Iterator[dict[str, Any]]:
    if isinstance(item, IntegerItem):
        yield {"url": f"{EXT}/minValue", "valueInteger": item.min}
        yield {"url": f"{EXT}/maxValue", "valueInteger": item.max}
        if item.unit is not None:
            yield {"url": f"{EXT}/questionnaire-unit", "valueCoding": _unit(item.unit)}
    if isinstance(item, MultiChoiceItem) and item.min_selected:
        yield {"url": f"{EXT}/questionnaire-minOccurs", "valueInteger": item.min_selected}
    if isinstance(item, MultiChoiceItem | ChoiceItem) or item.type.startswith("yes_no"):
        control = "check-box" if isinstance(item, MultiChoiceItem) else "radio-button"
        yield _item_control(control)
    gate = expression.enable_expression(ruleset, item.id)
    if gate is not None:
        yield {
            "url": f"{SDC}/sdc-questionnaire-enableWhenExpression",
            "valueExpression": {"language": expression.FHIRPATH, "expression": gate},
        }


def _unit(unit: str) -> dict[str, str]:
    code = _UCUM_CODES.get(unit)
    if code is None:
        return {"display": unit}
    return {"system": UCUM, "code": code, "display": unit}


def _item_control(code: str) -> dict[str, Any]:
    return {
        "url": f"{EXT}/questionnaire-itemControl",
        "valueCodeableConcept": {
            "coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": code}]
        },
    }


def _display(
    item_id: str, kind: str, control: str, text: str, translated: dict[str, Any]
) -> dict[str, Any]:
    return {
        "extension": [_item_control(control)],
        "linkId": f"{item_id}.{kind}",
        "text": text,
        **translated,
        "type": "display",
    }


def _options(item: Item, translate: _Translator) -> Iterator[dict[str, Any]]:
    if isinstance(item, ChoiceItem | MultiChoiceItem):
        for option in item.options:
            key = f"items.{item.id}.options.{option.value}"
            yield _option(
                option.value, option.text, translate.extension("_display", key, option.text)
            )
        return
    if item.type.startswith("yes_no"):
        values = ("yes", "no", "unsure") if isinstance(item, YesNoUnsureItem) else ("yes", "no")
        for value in values:
            words = _YES_NO_TEXT[value]
            yield _option(value, words["en"], translate.of("_display", words, words["en"]))


def _option(code: str, display: str, translated: dict[str, Any]) -> dict[str, Any]:
    return {
        "valueCoding": {"system": ANSWER_SYSTEM, "code": code, "display": display, **translated}
    }
