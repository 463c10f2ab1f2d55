"""The clinic policy pages in headless Chromium against `screening serve`: axe, 1100 and 360 px.

An admin signs in and opens the pack history, the diff with the earlier pack and an impact
report (issue 13).
"""

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from app.audit import service as audit_service
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Role
from app.db.unit import session_scope
from app.engine import Ruleset, load_ruleset
from app.engine.translations import load_translations
from app.rulepack import policy, replay
from tests.factories import CANDIDATE_ANSWERS, KEYRING, make_screening
from tests.review.seed import PASSWORD, make_user
from tests.rulepack.packs import stricter_pack
from tests.server import running_server
from tests.ui.browser import CHROMIUM, axe_violations, screenshot

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and os.environ.get("CI") != "true",
    reason=f"{CHROMIUM} is not installed (CI installs it and never skips)",
)
ADMIN = "admin@example.org"


def _seed(url: str, ruleset: Ruleset, tmp_path: Path) -> tuple[str, str]:
    """An admin's clinic with screenings, one impact report and a published stricter pack."""
    migrate.upgrade(migrate.make_config(database_url=url))
    engine = make_engine(url)
    now = datetime.now(UTC)
    with session_scope(make_sessionmaker(engine)) as session:
        clinic_id = make_user(
            session, clinic="Policy clinic", email=ADMIN, role=Role.admin
        ).clinic_id
        for systolic in (120, 152, 158, 170):
            answers = CANDIDATE_ANSWERS | {"systolic_bp": systolic}
            make_screening(
                session, ruleset=ruleset, clinic_id=clinic_id, answers=answers, created_at=now
            )
        pack_dir = stricter_pack(tmp_path)
        candidate = load_ruleset(pack_dir)
        impact = replay.replay(session, keyring=KEYRING, clinic_id=clinic_id,
                               candidate=candidate, period=replay.Period())  # fmt: skip
        report_id = replay.record(session, clinic_id=clinic_id, impact=impact,
                                  period=replay.Period(), active_sha256=ruleset.sha256,
                                  actor=audit_service.Actor.cli(), now=now)  # fmt: skip
        policy.adopt(session, clinic_id=clinic_id, default=ruleset, now=now)
        policy.publish(session, clinic_id=clinic_id, ruleset=candidate,
                       catalogues=load_translations(pack_dir),
                       actor=audit_service.Actor.cli(), now=now)  # fmt: skip
    engine.dispose()
    return str(report_id), ruleset.sha256


def _sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/review/policy")
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{url}/review/policy")


def test_policy_pages_have_no_axe_violations(
    browser: Browser, ruleset: Ruleset, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    report_id, earlier = _seed(url, ruleset, tmp_path)
    with running_server(url, tmp_path) as server:
        for width in (1100, 360):
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            _sign_in(page, server.url)
            expect(page.get_by_role("heading", level=1)).to_have_text("Clinic policy")
            assert axe_violations(page) == []
            page.goto(f"{server.url}/review/policy/diff?sha256={earlier}")
            expect(page.locator("pre")).to_contain_text("systolic_bp at_least 160 → 150")
            assert axe_violations(page) == []
            page.goto(f"{server.url}/review/policy/reports/{report_id}")
            expect(page.get_by_role("heading", level=1)).to_have_text("Impact report")
            assert axe_violations(page) == []
            screenshot(page, f"policy-report-{width}")
            context.close()
