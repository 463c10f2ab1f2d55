"""The `rules impact --html` report in headless Chromium: axe finds no WCAG violations (issue 13).

The page is self-contained, so it is opened from a file, as a physician would open it.
"""

import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from app.engine import evaluate, load_ruleset, validate_answers
from app.rulepack.impact import Impact, StoredScreening
from app.rulepack.report import render_html
from tests.factories import CANDIDATE_ANSWERS
from tests.rulepack.packs import DEFAULT, V1, stricter_pack
from tests.ui.browser import CHROMIUM, axe_violations, screenshot

AS_OF = date(2026, 6, 15)

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and os.environ.get("CI") != "true",
    reason=f"{CHROMIUM} is not installed (CI installs it and never skips)",
)


def _report(tmp_path: Path) -> Path:
    """A report with changes, several rules and answers the candidate rejects."""
    current, candidate = load_ruleset(DEFAULT), load_ruleset(stricter_pack(tmp_path))
    impact = Impact(candidate)
    cases: list[dict[str, Any]] = [
        CANDIDATE_ANSWERS | {"systolic_bp": systolic} for systolic in (120, 148, 152, 157, 165)
    ]
    cases.append(CANDIDATE_ANSWERS | {"systolic_bp": 151, "heart_failure": "yes"})
    for number, answers in enumerate(cases):
        validated = validate_answers(current, answers, as_of=AS_OF)
        decision = evaluate(current, validated, as_of=AS_OF)
        statuses = {flag.rule: flag.status.value for flag in decision.flags}
        impact.add(StoredScreening(f"00000000-0000-4000-8000-{number:012d}", AS_OF, answers,
                                   decision.outcome.value, statuses))  # fmt: skip
    rejected = Impact(load_ruleset(V1))
    rejected.add(StoredScreening("r", AS_OF, CANDIDATE_ANSWERS, "candidate", {}))
    impact.rejected.update(rejected.rejected)
    page = tmp_path / "impact.html"
    page.write_text(render_html(impact, clinic="North <Clinic>", period="all screenings",
                                base_url="https://screening.example.org"))  # fmt: skip
    return page


@pytest.mark.parametrize("width", [1280, 360])
def test_the_html_report_has_no_axe_violations(
    browser: Browser, tmp_path: Path, width: int
) -> None:
    report = _report(tmp_path)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(report.as_uri())
    assert page.locator("h1").count() == 1
    assert page.locator("svg").count() >= 1
    assert page.locator('a[href="https://screening.example.org/review/screenings/'
                        '00000000-0000-4000-8000-000000000002"]').count() == 1  # fmt: skip
    assert axe_violations(page) == []
    assert requested == [report.as_uri()]  # self-contained: nothing else is loaded
    screenshot(page, f"impact-report-{width}")
    context.close()
