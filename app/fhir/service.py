"""FHIR R4 (SDC) interface: export the questionnaire, receive QuestionnaireResponses.

A QuestionnaireResponse is read into the ``POST /v1/screenings`` shape and stored by the
screening service's own ``submit`` (same validation, evaluation, encryption, idempotency and
audit event), with ``source = fhir``. Contracts: never commits; raises the screening
service's errors, pointed at the response's linkIds.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from app import __version__
from app.audit import service as audit_service
from app.crypto import KeyRing
from app.db.models import Source
from app.engine import Ruleset, RulesetError
from app.engine.translations import Catalogue, load_translations
from app.errors import NotFound, ValidationFailed
from app.fhir import questionnaire, response
from app.rulepack.service import stored_ruleset
from app.screening import service as screening_service

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True, slots=True)
class Received:
    """The stored screening's id, the reply (a FHIR Parameters resource), replay or not."""

    screening_id: str
    decision: str
    body: dict[str, Any]
    is_replay: bool


def load_catalogues(rules_path: Path) -> dict[str, Catalogue]:
    """The pack's translations; English only if they are invalid (``rules check`` reports)."""
    try:
        return load_translations(rules_path)
    except RulesetError:
        return {}


def find_ruleset(session: Session | None, *, active: Ruleset, version: str | None) -> Ruleset:
    """The active pack, or a stored one whose sha256 is ``version``; NotFound otherwise."""
    if version is None or version in (active.sha256, active.version):
        return active
    if session is None or len(version) != 64:
        raise NotFound("No questionnaire with this version.")
    return stored_ruleset(session, sha256=version)


def export_questionnaire(
    ruleset: Ruleset, *, questionnaire_id: str, catalogues: dict[str, Catalogue], base_url: str
) -> dict[str, Any]:
    """The questionnaire as a FHIR R4 Questionnaire; NotFound unless it is the pack's."""
    if questionnaire_id != ruleset.questionnaire.id:
        raise NotFound("No questionnaire with this id.")
    return questionnaire.export(ruleset, catalogues=catalogues, base_url=base_url)


def receive(
    connection: Connection,
    *,
    ruleset: Ruleset,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    actor: audit_service.Actor,
    resource: object,
    idempotency_key: str | None,
    now: datetime,
    as_of: date,
    request_id: str | None,
    base_url: str,
) -> Received:
    """Validate, evaluate and store a QuestionnaireResponse as a screening (``source: fhir``).

    Raises ValidationFailed (problems pointing at linkIds) and IdempotencyKeyReused exactly
    where ``POST /v1/screenings`` would.
    """
    parsed = response.read(ruleset, resource)
    submission = screening_service.Submission(parsed.questionnaire, parsed.answers, parsed.subject)
    try:
        created = screening_service.submit(
            connection,
            ruleset=ruleset,
            keyring=keyring,
            clinic_id=clinic_id,
            actor=actor,
            submission=submission,
            idempotency_key=idempotency_key,
            now=now,
            as_of=as_of,
            request_id=request_id,
            source=Source.fhir,
        )
    except ValidationFailed as error:
        raise response.locate(error, parsed.paths) from None
    # Stored answers are the submitted ones without nulls (validate_answers keeps no nulls).
    answers = {key: value for key, value in parsed.answers.items() if value is not None}
    stored = response.build(ruleset, base_url=base_url, screening=created.body, answers=answers)
    body = _reply(stored, created.body)
    return Received(created.body["id"], created.body["decision"], body, created.is_replay)


def _reply(stored: dict[str, Any], screening: dict[str, Any]) -> dict[str, Any]:
    """A Parameters resource: the response as stored, the result, and where the screening is."""
    flags = [
        {
            "name": "flag",
            "part": [
                {"name": "rule", "valueCode": flag["rule"]},
                {"name": "severity", "valueCode": flag["severity"]},
                {"name": "status", "valueCode": flag["status"]},
                {"name": "reason", "valueString": flag["reason"]},
                *(
                    {"name": "evidence", "valueString": evidence["item"]}
                    for evidence in flag["evidence"]
                ),
            ],
        }
        for flag in screening["flags"]
    ]
    result = [
        {"name": "decision", "valueCode": screening["decision"]},
        {"name": "asOf", "valueDate": screening["as_of"]},
        {"name": "rulesetId", "valueString": screening["ruleset"]["id"]},
        {"name": "rulesetVersion", "valueString": screening["ruleset"]["version"]},
        {"name": "rulesetSha256", "valueString": screening["ruleset"]["sha256"]},
        *flags,
    ]
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "questionnaireResponse", "resource": stored},
            {"name": "screening", "valueUri": f"/v1/screenings/{screening['id']}"},
            {"name": "result", "part": result},
        ],
    }


def capability_statement(*, base_url: str, now: datetime) -> dict[str, Any]:
    """What this FHIR endpoint supports (R4, JSON, two resource types, SDC form receiver)."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.date().isoformat(),
        "kind": "instance",
        "software": {"name": "candidacy-screening", "version": __version__},
        "implementation": {
            "description": "Ketamine infusion candidacy screening",
            "url": f"{base_url.rstrip('/')}/fhir",
        },
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        # Only what is implemented: no search, so not an SDC form manager.
        "instantiates": ["http://hl7.org/fhir/uv/sdc/CapabilityStatement/sdc-form-receiver"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Bearer <clinic API key>; "
                    "QuestionnaireResponse needs the screenings:write scope."
                },
                "resource": [
                    {
                        "type": "Questionnaire",
                        "profile": f"{questionnaire.SDC}/sdc-questionnaire",
                        "interaction": [{"code": "read"}],
                    },
                    {
                        "type": "QuestionnaireResponse",
                        "interaction": [{"code": "create"}],
                        "documentation": "Stored as a screening; honours Idempotency-Key; "
                        "201 with Location /v1/screenings/{id}.",
                    },
                ],
            }
        ],
    }
