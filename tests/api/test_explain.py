"""GET /v1/screenings/{id}/explain: the stored result re-derived with the stored rule pack."""

import json
import shutil
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.verify import verify_chain
from app.db.models import AuditEvent, Screening
from app.engine import Ruleset
from app.main import create_app, load_checked_ruleset
from app.rulepack import service as rulepack_service
from app.screening import explain as screening_explain
from app.screening import store
from app.settings import default_rules_path
from tests.conftest import make_settings
from tests.factories import (
    CANDIDATE_ANSWERS,
    KEYRING,
    NEEDS_REVIEW_ANSWERS,
    FixedClock,
    auth,
    make_key,
)

QUESTIONNAIRE = "ketamine-infusion-candidacy"
# Elevated under pack A (140-159 systolic), clear under the edited pack B (145-159).
BORDERLINE_ANSWERS = CANDIDATE_ANSWERS | {"systolic_bp": 142}
UNSURE_ANSWERS = CANDIDATE_ANSWERS | {"concussion": "unsure"}


def submit(client: TestClient, key: Any, answers: dict[str, Any]) -> dict[str, Any]:
    body = {"questionnaire": QUESTIONNAIRE, "subject": {"reference": "MRN-7"}, "answers": answers}
    response = client.post("/v1/screenings", json=body, headers=auth(key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def result_of(screening: dict[str, Any]) -> dict[str, Any]:
    return {key: screening[key] for key in screening_explain.RESULT_KEYS}


@pytest.mark.parametrize(
    "answers",
    [
        CANDIDATE_ANSWERS,
        NEEDS_REVIEW_ANSWERS,
        UNSURE_ANSWERS,
        CANDIDATE_ANSWERS | {"heart_failure": "yes"},
    ],
    ids=["candidate", "needs_review", "unknown", "not_candidate"],
)
def test_explain_equals_the_stored_result(
    client: TestClient, session: Session, ruleset: Ruleset, answers: dict[str, Any]
) -> None:
    key = make_key(session)
    created = submit(client, key, answers)
    response = client.get(f"/v1/screenings/{created['id']}/explain", headers=auth(key))
    assert response.status_code == 200, response.text
    explained = response.json()
    assert explained["matches_stored"] is True
    assert explained["result"] == explained["stored"] == result_of(created)
    assert explained["id"] == created["id"]
    assert explained["as_of"] == created["as_of"]
    assert explained["ruleset"] == created["ruleset"]
    assert explained["answer_errors"] == []
    assert [rule["rule"] for rule in explained["rules"]] == [r.id for r in ruleset.rules]
    flagged = {flag["rule"]: flag for flag in created["flags"]}
    for rule in explained["rules"]:
        assert rule["title"]
        assert rule["rationale"]
        assert rule["references"]
        flag = flagged.get(rule["rule"])
        if flag is None:
            assert (rule["status"], rule["reason"], rule["evidence"]) == ("clear", None, [])
            continue
        assert (rule["status"], rule["severity"], rule["reason"]) == (
            flag["status"],
            flag["severity"],
            flag["reason"],
        )
        assert [{"item": e["item"], "answer": e["answer"]} for e in rule["evidence"]] == flag[
            "evidence"
        ]
        for evidence in rule["evidence"]:
            assert evidence["question"] == ruleset.items[evidence["item"]].item.text


def test_explain_shows_question_text_for_the_evidence(client: TestClient, session: Session) -> None:
    key = make_key(session)
    created = submit(client, key, NEEDS_REVIEW_ANSWERS)
    explained = client.get(f"/v1/screenings/{created['id']}/explain", headers=auth(key)).json()
    (elevated,) = [rule for rule in explained["rules"] if rule["rule"] == "elevated_blood_pressure"]
    assert elevated["status"] == "fired"
    assert {
        "item": "systolic_bp",
        "question": "What was the top number of your most recent blood pressure reading?",
        "answer": 148,
    } in elevated["evidence"]


def test_explain_is_audited_with_the_content_digest(client: TestClient, session: Session) -> None:
    key = make_key(session)
    created = submit(client, key, NEEDS_REVIEW_ANSWERS)
    response = client.get(f"/v1/screenings/{created['id']}/explain", headers=auth(key))
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "screening.explained")
    ).one()
    row = session.get_one(Screening, uuid.UUID(created["id"]))
    assert event.target_id == created["id"]
    assert event.target_sha256 == store.ScreeningContent.decrypt(KEYRING, row).digest()
    assert event.actor_id == str(key.api_key_id)
    assert event.clinic_id == key.clinic_id
    assert event.ruleset_sha256 == created["ruleset"]["sha256"]
    assert event.request_id == response.headers["x-request-id"]
    assert event.detail == {"matches_stored": True}
    assert verify_chain(session, screenings=partial(store.content_digest, KEYRING)).ok


def test_other_clinics_screening_is_404_like_an_unknown_id(
    client: TestClient, session: Session
) -> None:
    owner, other = make_key(session), make_key(session)
    created = submit(client, owner, CANDIDATE_ANSWERS)
    theirs = client.get(f"/v1/screenings/{created['id']}/explain", headers=auth(other))
    unknown = client.get(f"/v1/screenings/{uuid.uuid4()}/explain", headers=auth(other))
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()
    assert theirs.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("scopes", [("screenings:write",), ("audit:read",)])
def test_explain_needs_screenings_read(
    client: TestClient, session: Session, scopes: tuple[str, ...]
) -> None:
    key = make_key(session, scopes=scopes)
    response = client.get(f"/v1/screenings/{uuid.uuid4()}/explain", headers=auth(key))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


def test_stored_answers_that_no_longer_validate_are_reported(ruleset: Ruleset) -> None:
    stored = {"decision": "candidate", "flags": [], "ruleset": {}, "as_of": "2026-06-15"}
    body = screening_explain.trace(ruleset, {"systolic_bp": "high"}, as_of=NOW_DATE, stored=stored)
    assert body["matches_stored"] is False
    assert body["result"] is None
    assert body["answer_errors"] == [{"code": "wrong_type", "item": "systolic_bp"}]


NOW_DATE = FixedClock().today()


# --- Explain years later: the service restarts with an edited rule pack -------------------


def edited_pack(tmp_path: Path) -> Path:
    """Pack B: a copy of the default pack with a raised systolic threshold and a new title."""
    target = tmp_path / "ketamine-infusion-b"
    shutil.copytree(default_rules_path(), target)
    rule = target / "rules" / "elevated_blood_pressure.yaml"
    text = rule.read_text()
    for old, new in [
        ("title: Elevated blood pressure", "title: Raised blood pressure (policy v2)"),
        (
            "{item: systolic_bp, at_least: 140, below: 160}",
            "{item: systolic_bp, at_least: 145, below: 160}",
        ),
        (
            "  - name: systolic exactly 140\n    answers: {systolic_bp: 140, diastolic_bp: 80}\n"
            "    expect: fired",
            "  - name: systolic 140 is below the v2 band\n"
            "    answers: {systolic_bp: 140, diastolic_bp: 80}\n    expect: clear",
        ),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    rule.write_text(text)
    pack = target / "pack.yaml"
    pack.write_text(pack.read_text().replace('version: "2.0.0"', 'version: "2.1.0"'))
    return target


@pytest.fixture
def restarted(
    tmp_path: Path,
    database_url: str,
    session_factory: sessionmaker[Session],
    clock: FixedClock,
) -> Iterator[tuple[TestClient, Ruleset]]:
    """A second app on the same database whose lifespan loads pack B from its settings."""
    rules_b = edited_pack(tmp_path)
    pack_b = load_checked_ruleset(rules_b)  # B is valid: its own tests pass
    settings = make_settings(database_url, rules_path=rules_b)
    with TestClient(create_app(settings, sessionmaker=session_factory, clock=clock)) as client:
        yield client, pack_b


def test_explain_years_later_under_an_edited_pack(
    client: TestClient,
    session: Session,
    ruleset: Ruleset,
    clock: FixedClock,
    restarted: tuple[TestClient, Ruleset],
) -> None:
    key = make_key(session)
    created = submit(client, key, BORDERLINE_ANSWERS)
    assert [flag["rule"] for flag in created["flags"]] == ["elevated_blood_pressure"]
    path = f"/v1/screenings/{created['id']}"
    before_get = client.get(path, headers=auth(key))
    before_explain = client.get(f"{path}/explain", headers=auth(key))

    later, pack_b = restarted
    clock.at = clock.at.replace(year=clock.at.year + 3)
    assert pack_b.sha256 != ruleset.sha256
    after_get = later.get(path, headers=auth(key))
    after_explain = later.get(f"{path}/explain", headers=auth(key))
    assert after_get.status_code == after_explain.status_code == 200
    assert after_get.content == before_get.content
    assert after_explain.content == before_explain.content
    explained = after_explain.json()
    assert explained["matches_stored"] is True
    assert explained["ruleset"]["sha256"] == ruleset.sha256
    assert explained["as_of"] == "2026-06-15"
    (elevated,) = [rule for rule in explained["rules"] if rule["rule"] == "elevated_blood_pressure"]
    assert (elevated["title"], elevated["status"]) == ("Elevated blood pressure", "fired")

    # The restarted service decides new screenings with B ...
    fresh = submit(later, key, BORDERLINE_ANSWERS)
    assert (fresh["decision"], fresh["ruleset"]["sha256"]) == ("candidate", pack_b.sha256)
    # ... and still serves A's full content by its hash.
    pack_a = later.get(f"/v1/rulesets/{ruleset.sha256}", headers=auth(key))
    assert pack_a.status_code == 200
    assert pack_a.json()["content"] == json.loads(ruleset.canonical_json)
    assert pack_a.json()["version"] == "2.0.0"
    assert verify_chain(session, screenings=partial(store.content_digest, KEYRING)).ok


def test_rebuilt_rulesets_are_cached_by_sha256(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    created = submit(client, key, CANDIDATE_ANSWERS)
    for _ in range(2):
        client.get(f"/v1/screenings/{created['id']}/explain", headers=auth(key))
    first = rulepack_service.stored_ruleset(session, sha256=ruleset.sha256)
    assert rulepack_service.stored_ruleset(session, sha256=ruleset.sha256) is first
    assert first is not ruleset  # rebuilt from the stored row, not the pack loaded today
    assert first.canonical_json == ruleset.canonical_json
