"""Each clinic decides with its own active pack; invitations keep the pack they were made under."""

import html
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import service as audit_service
from app.context import app_context
from app.db.models import AuditEvent, Clinic, Invitation
from app.engine import Ruleset, load_ruleset
from app.engine.translations import load_translations
from app.errors import Conflict, NotFound
from app.main import create_app
from app.rulepack import policy
from app.rulepack.policy import ActivePackCache
from app.rulepack.service import RulesetCache
from tests.conftest import make_settings
from tests.factories import CANDIDATE_ANSWERS, NOW, FixedClock, auth, make_key
from tests.form.support import (
    V1_FEMALE_ANSWERS,
    V1_FEMALE_PAGES,
    make_form_clinic,
    stored_screenings,
)
from tests.review.seed import https_client, seed_queue, sign_in

RULES = Path(__file__).resolve().parents[2] / "rules"
QUESTIONNAIRE = "ketamine-infusion-candidacy"
SYSTOLIC_152 = CANDIDATE_ANSWERS | {"systolic_bp": 152}


@pytest.fixture(scope="module")
def stricter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default pack with the systolic exclusion moved from 160 to 150."""
    pack = tmp_path_factory.mktemp("packs") / "stricter"
    shutil.copytree(RULES / "ketamine-infusion", pack)
    rule = pack / "rules" / "uncontrolled_blood_pressure.yaml"
    rule.write_text(rule.read_text().replace("at_least: 160", "at_least: 150"))
    return pack


def publish(session: Session, clinic_id: Any, directory: Path) -> policy.Activation:
    activation = policy.publish(
        session,
        clinic_id=clinic_id,
        ruleset=load_ruleset(directory),
        catalogues=load_translations(directory),
        actor=audit_service.Actor.cli(),
        now=NOW,
    )
    session.flush()
    return activation


def post(client: TestClient, path: str, key: Any, answers: dict[str, Any]) -> dict[str, Any]:
    body = {"questionnaire": QUESTIONNAIRE, "answers": answers, "subject": {"reference": "M-1"}}
    if path == "/v1/evaluate":
        del body["subject"]
    response = client.post(path, json=body, headers=auth(key))
    assert response.status_code in {200, 201}, response.text
    result: dict[str, Any] = response.json()
    return result


def test_two_clinics_decide_the_same_answers_with_their_own_packs(
    client: TestClient, session: Session, ruleset: Ruleset, stricter_dir: Path
) -> None:
    strict, default = make_key(session), make_key(session)
    activation = publish(session, strict.clinic_id, stricter_dir)
    assert (activation.from_sha256, activation.kind) == (None, "published")
    stricter = load_ruleset(stricter_dir)
    for path in ("/v1/evaluate", "/v1/screenings"):
        mine, theirs = (
            post(client, path, strict, SYSTOLIC_152),
            post(client, path, default, SYSTOLIC_152),
        )
        assert (mine["decision"], mine["ruleset"]["sha256"]) == ("not_candidate", stricter.sha256)
        assert (theirs["decision"], theirs["ruleset"]["sha256"]) == ("needs_review", ruleset.sha256)
    for key, stored in ((strict, mine), (default, theirs)):
        explained = client.get(f"/v1/screenings/{stored['id']}/explain", headers=auth(key)).json()
        assert explained["matches_stored"] is True
        assert explained["ruleset"] == stored["ruleset"]
        assert explained["result"]["flags"] == stored["flags"]
    questionnaire = client.get(f"/v1/questionnaires/{QUESTIONNAIRE}", headers=auth(strict))
    assert questionnaire.json()["ruleset"]["sha256"] == stricter.sha256


def test_publish_and_rollback_are_audited_with_both_hashes(
    session: Session, ruleset: Ruleset, stricter_dir: Path
) -> None:
    key = make_key(session)
    first = publish(session, key.clinic_id, RULES / "ketamine-infusion")
    second = publish(session, key.clinic_id, stricter_dir)
    with pytest.raises(Conflict):
        publish(session, key.clinic_id, stricter_dir)
    back = policy.roll_back(
        session, clinic_id=key.clinic_id, sha256=first.to_sha256, rulesets=RulesetCache(),
        actor=audit_service.Actor.cli(), now=NOW,
    )  # fmt: skip
    with pytest.raises(NotFound):
        policy.roll_back(
            session, clinic_id=key.clinic_id, sha256="0" * 64, rulesets=RulesetCache(),
            actor=audit_service.Actor.cli(), now=NOW,
        )  # fmt: skip
    assert [(a.kind, a.from_sha256, a.to_sha256) for a in policy.history(
        session, clinic_id=key.clinic_id)] == [
        ("published", None, ruleset.sha256),
        ("published", ruleset.sha256, second.to_sha256),
        ("rolled_back", second.to_sha256, ruleset.sha256),
    ]  # fmt: skip
    assert back.to_sha256 == ruleset.sha256
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.clinic_id == key.clinic_id, AuditEvent.action.like("rule_pack.%"))
        .order_by(AuditEvent.seq)
    ).all()
    assert [(e.action, e.detail["from_sha256"], e.detail["to_sha256"], e.actor_id)
            for e in events if e.detail] == [
        ("rule_pack.published", None, ruleset.sha256, "cli"),
        ("rule_pack.published", ruleset.sha256, second.to_sha256, "cli"),
        ("rule_pack.rolled_back", second.to_sha256, ruleset.sha256, "cli"),
    ]  # fmt: skip


def _complete(client: TestClient, link: str) -> str:
    for page, data in V1_FEMALE_PAGES:
        response = client.post(f"{link}/q/{page}", data=data, follow_redirects=False)
        assert response.status_code == 303, page
    assert response.headers["location"] == f"{link}/check"
    return client.get(f"{link}/check").text


def test_an_invitation_keeps_the_pack_it_was_created_under(
    client: TestClient, session: Session, ruleset: Ruleset
) -> None:
    clinic_id, key = make_form_clinic(session)
    v1_dir = RULES / "ketamine-infusion-v1"
    v1 = publish(session, clinic_id, v1_dir)
    app_context(client.app).component(ActivePackCache).clear()  # type: ignore[arg-type]
    body = {"subject": {"reference": "MRN-7"}, "language": "en"}
    before = client.post("/v1/invitations", json=body, headers=auth(key)).json()["url"]
    publish(session, clinic_id, RULES / "ketamine-infusion")  # v2, after the invitation
    app_context(client.app).component(ActivePackCache).clear()  # type: ignore[arg-type]
    after = client.post("/v1/invitations", json=body, headers=auth(key)).json()["url"]
    pinned = {row.rule_pack_sha256 for row in session.scalars(
        select(Invitation).where(Invitation.clinic_id == clinic_id))}  # fmt: skip
    assert pinned == {v1.to_sha256, ruleset.sha256}
    link = re.sub(r"^https?://[^/]+", "", before)
    check = _complete(client, link)  # the v1 pages end at the check page under v1 only
    assert "Check your answers" in check
    assert (
        client.post(f"{link}/submit", follow_redirects=False).headers["location"].endswith("/done")
    )
    (stored,) = stored_screenings(session, clinic_id)
    assert stored["answers"] == V1_FEMALE_ANSWERS
    assert stored["result"]["ruleset"]["sha256"] == v1.to_sha256
    # an invitation created after the publish asks the v2 questions
    new_link = re.sub(r"^https?://[^/]+", "", after)
    response = client.post(
        f"{new_link}/q/about_you", data=V1_FEMALE_PAGES[0][1], follow_redirects=False
    )
    assert response.status_code == 303
    for page, data in V1_FEMALE_PAGES[1:]:
        response = client.post(f"{new_link}/q/{page}", data=data, follow_redirects=False)
    assert response.headers["location"] != f"{new_link}/check"


def test_the_form_speaks_the_pinned_packs_stored_spanish(
    session: Session,
    session_factory: sessionmaker[Session],
    database_url: str,
    ruleset: Ruleset,
    tmp_path: Path,
) -> None:
    """The server's pack on disk has no translations; the published pack brought its own."""
    bare = tmp_path / "bare"
    shutil.copytree(RULES / "ketamine-infusion", bare)
    shutil.rmtree(bare / "translations")
    settings = make_settings(database_url, rules_path=bare)
    app = create_app(settings, sessionmaker=session_factory, clock=FixedClock(), ruleset=ruleset)
    clinic_id, key = make_form_clinic(session)
    v1_dir = RULES / "ketamine-infusion-v1"
    publish(session, clinic_id, v1_dir)
    spanish = load_translations(v1_dir)["es"].entries["items.sex_at_birth.text"].text
    with TestClient(app) as client:
        body = {"subject": {"reference": "MRN-7"}, "language": "es"}
        url = client.post("/v1/invitations", json=body, headers=auth(key)).json()["url"]
        link = re.sub(r"^https?://[^/]+", "", url)
        assert html.escape(spanish, quote=False) in client.get(f"{link}/q/about_you").text
        # a clinic on the server's own pack (stored without translations): English, no error
        _, other_key = make_form_clinic(session)
        url = client.post("/v1/invitations", json=body, headers=auth(other_key)).json()["url"]
        page = client.get(re.sub(r"^https?://[^/]+", "", url) + "/q/about_you")
        assert page.status_code == 200
        assert ruleset.items["sex_at_birth"].item.text in page.text


def test_a_clinic_created_after_startup_is_pinned_at_the_next_start(
    session: Session, ruleset: Ruleset
) -> None:
    key = make_key(session)
    assert session.get_one(Clinic, key.clinic_id).rule_pack_sha256 is None
    assert policy.resolve(
        session, clinic_id=key.clinic_id, rulesets=RulesetCache(), default=ruleset
    ) is ruleset  # fmt: skip
    assert policy.adopt_unpinned(session, default=ruleset, now=NOW) >= 1
    assert session.get_one(Clinic, key.clinic_id).rule_pack_sha256 == ruleset.sha256
    assert [a.kind for a in policy.history(session, clinic_id=key.clinic_id)] == ["adopted"]


def test_the_review_queue_filters_by_the_rules_of_the_clinics_pack(
    app: FastAPI, session: Session, ruleset: Ruleset, clock: FixedClock
) -> None:
    seeded = seed_queue(session, ruleset=ruleset, now=clock.now())
    v1 = load_ruleset(RULES / "ketamine-infusion-v1")
    publish(session, seeded.clinic_id, RULES / "ketamine-infusion-v1")
    with https_client(app) as client:
        sign_in(client, seeded.physician)
        queue = client.get("/review")
    assert queue.status_code == 200, queue.text
    offered = set(re.findall(r'<option value="([a-z0-9_]+)"', queue.text))
    rule_ids = {rule.id for rule in v1.rules}
    assert rule_ids <= offered
    assert "aneurysm_avm_or_brain_bleed" not in offered  # a v2 rule: not this clinic's policy
