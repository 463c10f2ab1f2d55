"""Build QuestionnaireResponses for the FHIR tests."""

from typing import Any

from app.engine import Ruleset
from app.engine.model import DateItem, IntegerItem
from app.fhir.questionnaire import ANSWER_SYSTEM

QUESTIONNAIRE_URL = "http://testserver/fhir/Questionnaire/ketamine-infusion-candidacy"


def answer(ruleset: Ruleset, item_id: str, value: Any) -> dict[str, Any]:
    item = ruleset.items[item_id].item if item_id in ruleset.items else None
    if isinstance(item, IntegerItem) or isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(item, DateItem):
        return {"valueDate": value}
    return {"valueCoding": {"system": ANSWER_SYSTEM, "code": value}}


def response(
    ruleset: Ruleset,
    answers: dict[str, Any],
    *,
    reference: str = "Patient/0042",
    grouped: bool = True,
) -> dict[str, Any]:
    """A completed QuestionnaireResponse holding ``answers`` (nested in groups by default)."""

    def entry(item_id: str) -> dict[str, Any]:
        values = answers[item_id]
        listed = values if isinstance(values, list) else [values]
        return {"linkId": item_id, "answer": [answer(ruleset, item_id, one) for one in listed]}

    if grouped:
        items = []
        for group in ruleset.questionnaire.groups:
            inner = [entry(item.id) for item in group.items if item.id in answers]
            if inner:
                items.append({"linkId": group.id, "item": inner})
        items += [entry(key) for key in answers if key not in ruleset.items]
    else:
        items = [entry(key) for key in answers]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed",
        "subject": {"reference": reference},
        "item": items,
    }
