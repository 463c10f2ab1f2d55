"""The clinic policy pages: admins see the history, a diff and the impact reports (issue 13)."""

import html
import uuid
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.db.models import Role
from app.engine import Ruleset, load_ruleset
from app.engine.translations import load_translations
from app.rulepack import policy, replay
from tests.factories import CANDIDATE_ANSWERS, KEYRING, NOW, make_screening
from tests.review.seed import https_client, make_user, sign_in
from tests.rulepack.packs import stricter_pack

SYSTOLIC_155 = {"systolic_bp": 155}


def _seed(session: Session, ruleset: Ruleset, tmp_path: Path) -> dict[str, str]:
    admin = make_user(session, clinic="Policy clinic", email="admin@example.org", role=Role.admin)
    make_user(session, clinic="Policy clinic", email="doc@example.org")
    clinic_id = admin.clinic_id
    stored = make_screening(session, ruleset=ruleset, clinic_id=clinic_id,
                            answers=CANDIDATE_ANSWERS | SYSTOLIC_155)  # fmt: skip
    pack_dir = stricter_pack(tmp_path)
    candidate = load_ruleset(pack_dir)
    impact = replay.replay(session, keyring=KEYRING, clinic_id=clinic_id, candidate=candidate,
                           period=replay.Period())  # fmt: skip
    report_id = replay.record(
        session, clinic_id=clinic_id, impact=impact, period=replay.Period(),
        active_sha256=None, actor=audit_service.Actor.cli(), now=NOW,
    )  # fmt: skip
    policy.adopt(session, clinic_id=clinic_id, default=ruleset, now=NOW)
    policy.publish(session, clinic_id=clinic_id, ruleset=candidate,
                   catalogues=load_translations(pack_dir), actor=audit_service.Actor.cli(),
                   now=NOW)  # fmt: skip
    session.flush()
    return {"screening": stored["id"], "report": str(report_id), "default": ruleset.sha256,
            "candidate": candidate.sha256}  # fmt: skip


def test_an_admin_sees_history_diff_and_report(
    app: FastAPI, session: Session, ruleset: Ruleset, tmp_path: Path
) -> None:
    seeded = _seed(session, ruleset, tmp_path)
    with https_client(app) as client:
        _check_admin_pages(client, seeded)


def _check_admin_pages(client: TestClient, seeded: dict[str, str]) -> None:
    sign_in(client, "admin@example.org")
    page = client.get("/review/policy")
    assert page.status_code == 200, page.text
    assert seeded["candidate"] in page.text
    assert "(active)" in page.text
    assert f"/review/policy/reports/{seeded['report']}" in page.text
    diff = client.get(f"/review/policy/diff?sha256={seeded['default']}")
    assert diff.status_code == 200
    assert html.escape("uncontrolled_blood_pressure: systolic_bp at_least 160 → 150") in diff.text
    report = client.get(f"/review/policy/reports/{seeded['report']}")
    assert report.status_code == 200
    assert f'href="/review/screenings/{seeded["screening"]}"' in report.text
    assert "MRN" not in report.text
    unknown = client.get(f"/review/policy/reports/{uuid.uuid4()}")
    assert unknown.status_code == 404
    never = client.get(f"/review/policy/diff?sha256={'a' * 64}")
    assert never.status_code == 404


def test_a_physician_may_not_see_the_policy_pages(
    app: FastAPI, session: Session, ruleset: Ruleset, tmp_path: Path
) -> None:
    seeded = _seed(session, ruleset, tmp_path)
    with https_client(app) as client:
        assert client.get("/review/policy").status_code == 303  # to the sign-in page
        sign_in(client, "doc@example.org")
        for path in ("/review/policy", f"/review/policy/reports/{seeded['report']}",
                     f"/review/policy/diff?sha256={seeded['default']}"):  # fmt: skip
            assert client.get(path).status_code == 403
