"""GET /fhir/Questionnaire/{id} and /fhir/metadata: valid FHIR R4 (fhir.resources R4B models)."""

from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire
from sqlalchemy.orm import Session

from app.engine import Ruleset
from app.engine.model import ChoiceItem, IntegerItem, MultiChoiceItem
from app.fhir.questionnaire import ANSWER_SYSTEM
from tests.factories import auth, make_key

PATH = "/fhir/Questionnaire/ketamine-infusion-candidacy"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
ENABLE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression"


def _items(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for group in document["item"]:
        for item in group["item"]:
            found[item["linkId"]] = item
    return found


def _extension(item: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in item.get("extension", []) if e["url"] == url), None)


def _spanish(element: dict[str, Any]) -> str:
    (translation,) = element["extension"]
    assert translation["url"] == TRANSLATION
    parts = {part["url"]: part for part in translation["extension"]}
    assert parts["lang"]["valueCode"] == "es"
    text: str = parts["content"]["valueString"]
    return text


def test_questionnaire_validates_and_mirrors_the_pack(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    response = client.get(PATH, headers=auth(make_key(session)))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    document = response.json()
    Questionnaire.model_validate(document)
    assert document["version"] == ruleset.sha256
    items = _items(document)
    assert [item.id for item in ruleset.questionnaire.items] == list(items)
    for model in ruleset.questionnaire.items:
        exported = items[model.id]
        assert exported["required"] is model.required
        gate = _extension(exported, ENABLE)
        assert (gate is not None) is (model.enable_when is not None), model.id
        assert "enableWhen" not in exported  # SDC: never both
        if isinstance(model, ChoiceItem | MultiChoiceItem):
            codes = [option["valueCoding"]["code"] for option in exported["answerOption"]]
            assert codes == [option.value for option in model.options]
            assert exported["repeats"] is isinstance(model, MultiChoiceItem)
        if isinstance(model, IntegerItem):
            assert _extension(exported, "http://hl7.org/fhir/StructureDefinition/minValue") == {
                "url": "http://hl7.org/fhir/StructureDefinition/minValue",
                "valueInteger": model.min,
            }
            assert exported["type"] == "integer"


def test_units_are_ucum_and_yes_no_has_unsure(client: TestClient, session: Session) -> None:
    items = _items(client.get(PATH, headers=auth(make_key(session))).json())
    unit = _extension(
        items["systolic_bp"], "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
    )
    assert unit is not None
    assert unit["valueCoding"] == {
        "system": "http://unitsofmeasure.org",
        "code": "mm[Hg]",
        "display": "mmHg",
    }
    codes = [o["valueCoding"]["code"] for o in items["hypertension"]["answerOption"]]
    assert codes == ["yes", "no", "unsure"]
    assert {o["valueCoding"]["system"] for o in items["hypertension"]["answerOption"]} == {
        ANSWER_SYSTEM
    }
    assert [o["valueCoding"]["code"] for o in items["breastfeeding"]["answerOption"]] == [
        "yes",
        "no",
    ]


def test_spanish_travels_as_translation_extensions(client: TestClient, session: Session) -> None:
    document = client.get(PATH, headers=auth(make_key(session))).json()
    assert _spanish(document["_title"]) == "Cuestionario para el tratamiento con ketamina"
    items = _items(document)
    assert _spanish(items["date_of_birth"]["_text"]) == "¿Cuál es su fecha de nacimiento?"
    yes = items["hypertension"]["answerOption"][0]["valueCoding"]
    assert _spanish(yes["_display"]) == "Sí"
    migraine = items["conditions"]["answerOption"][0]["valueCoding"]
    assert _spanish(migraine["_display"]) == "Migrañas"


def test_version_by_sha256_and_unknown_version(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    headers = auth(make_key(session))
    assert client.get(PATH, params={"version": ruleset.sha256}, headers=headers).status_code == 200
    assert client.get(PATH, params={"version": ruleset.version}, headers=headers).status_code == 200
    missing = client.get(PATH, params={"version": "0" * 64}, headers=headers)
    assert missing.status_code == 404
    OperationOutcome.model_validate(missing.json())
    assert missing.json()["issue"][0]["code"] == "not-found"


def test_unknown_questionnaire_and_missing_key_are_operation_outcomes(
    client: TestClient, session: Session
) -> None:
    unknown = client.get("/fhir/Questionnaire/other", headers=auth(make_key(session)))
    assert unknown.status_code == 404
    OperationOutcome.model_validate(unknown.json())
    denied = client.get(PATH)
    assert denied.status_code == 401
    assert denied.headers["content-type"] == "application/fhir+json"
    assert denied.json()["issue"][0]["code"] == "login"


def test_metadata_is_a_capability_statement(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert resources["Questionnaire"]["interaction"] == [{"code": "read"}]
    assert resources["QuestionnaireResponse"]["interaction"] == [{"code": "create"}]
    assert statement["fhirVersion"] == "4.0.1"
