"""FHIR and CDS Hooks decide with the clinic's active pack, like /v1 and the form (issue 13).

A clinic that published a stricter blood-pressure cut-off (exclude from 150 mmHg) must get
the same decision for a QuestionnaireResponse or a prefetched EHR form as for
``POST /v1/screenings``; a clinic on the default pack gets the default's decision.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import AuditEvent
from app.engine import Ruleset, load_ruleset
from tests.cds.support import Signer, jwks_server, trust
from tests.factories import auth, make_key
from tests.fhir.support import response
from tests.rulepack.test_policy import SYSTOLIC_152, publish, stricter_dir

__all__ = ["stricter_dir"]  # the module fixture, reused

PATIENT_VIEW = "ketamine-screening-patient-view"
BOOKING = "ketamine-screening-appointment-book"


@pytest.fixture(scope="module")
def ehr() -> Iterator[Signer]:
    with jwks_server() as signer:
        yield signer


def _decision(body: dict[str, Any]) -> str:
    (result,) = [p for p in body["parameter"] if p["name"] == "result"]
    (decision,) = [p["valueCode"] for p in result["part"] if p["name"] == "decision"]
    return str(decision)


def test_a_questionnaire_response_is_decided_with_the_clinics_pack(
    client: TestClient, session: Session, ruleset: Ruleset, stricter_dir: Path
) -> None:
    strict, default = make_key(session), make_key(session)
    publish(session, strict.clinic_id, stricter_dir)
    stricter = load_ruleset(stricter_dir)
    resource = response(ruleset, SYSTOLIC_152)
    mine = client.post("/fhir/QuestionnaireResponse", json=resource, headers=auth(strict))
    theirs = client.post("/fhir/QuestionnaireResponse", json=resource, headers=auth(default))
    assert (mine.status_code, theirs.status_code) == (201, 201), mine.text + theirs.text
    assert (_decision(mine.json()), _decision(theirs.json())) == ("not_candidate", "needs_review")
    stored = client.get(mine.headers["location"], headers=auth(strict)).json()
    assert stored["ruleset"]["sha256"] == stricter.sha256
    fetched = client.get("/fhir/Questionnaire/ketamine-infusion-candidacy", headers=auth(strict))
    assert fetched.json()["version"] == stricter.sha256


def _hook(ruleset: Ruleset) -> dict[str, Any]:
    answered = response(ruleset, SYSTOLIC_152, reference="Patient/p-1")
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": answered}]}
    return {
        "hook": "appointment-book",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {
            "userId": "Practitioner/dr-1",
            "patientId": "p-1",
            "appointments": {"resourceType": "Bundle", "type": "collection", "entry": []},
        },
        "prefetch": {"questionnaireResponse": bundle},
    }


def test_a_prefetched_ehr_form_is_advised_with_the_clinics_pack(
    client: TestClient, session: Session, ruleset: Ruleset, stricter_dir: Path, ehr: Signer
) -> None:
    strict = make_key(session)
    publish(session, strict.clinic_id, stricter_dir)
    trust(session, strict.clinic_id, ehr)
    advised = client.post(f"/cds-services/{BOOKING}", json=_hook(ruleset),
                          headers=ehr.headers(BOOKING))  # fmt: skip
    assert advised.status_code == 200, advised.text
    (card,) = advised.json()["cards"]
    assert card["indicator"] == "critical"  # not_candidate under the clinic's 150 cut-off
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "cds.advised")).one()
    assert event.ruleset_sha256 == load_ruleset(stricter_dir).sha256


def test_a_stored_screening_card_names_the_pack_it_was_decided_with(
    client: TestClient, session: Session, ruleset: Ruleset, stricter_dir: Path, ehr: Signer
) -> None:
    key = make_key(session)
    trust(session, key.clinic_id, ehr)
    body = {"questionnaire": "ketamine-infusion-candidacy", "answers": SYSTOLIC_152,
            "subject": {"reference": "Patient/p-1"}}  # fmt: skip
    created = client.post("/v1/screenings", json=body, headers=auth(key))
    assert created.status_code == 201, created.text
    publish(session, key.clinic_id, stricter_dir)  # a later policy does not rewrite the past
    hook = _hook(ruleset) | {"hook": "patient-view", "prefetch": {}}
    advised = client.post(f"/cds-services/{PATIENT_VIEW}", json=hook,
                          headers=ehr.headers(PATIENT_VIEW))  # fmt: skip
    assert advised.status_code == 200, advised.text
    (card,) = advised.json()["cards"]
    assert card["indicator"] == "warning"  # needs_review, as it was decided and stored
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "cds.advised")).one()
    assert event.ruleset_sha256 == ruleset.sha256


def test_the_fhir_questionnaire_speaks_the_translations_stored_with_the_clinics_pack(
    client: TestClient, session: Session, tmp_path: Path, stricter_dir: Path
) -> None:
    pack = tmp_path / "reworded"  # its own content hash, so its own stored translations
    shutil.copytree(stricter_dir, pack)
    spanish = pack / "translations" / "es.yaml"
    spanish.write_text(spanish.read_text().replace("insuficiencia cardíaca?", "FALLO CARDIACO?"))
    key = make_key(session)
    publish(session, key.clinic_id, pack)  # stores the pack's own catalogues beside it
    exported = client.get("/fhir/Questionnaire/ketamine-infusion-candidacy", headers=auth(key))
    assert exported.status_code == 200, exported.text
    assert "FALLO CARDIACO?" in exported.text  # not the server's default wording
    other = client.get("/fhir/Questionnaire/ketamine-infusion-candidacy",
                       headers=auth(make_key(session)))  # fmt: skip
    assert "FALLO CARDIACO?" not in other.text
    assert "insuficiencia cardíaca?" in other.text
