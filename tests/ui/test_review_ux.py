"""The physician's pages built for the decision (issue 17), in headless Chromium.

The detail page's first screen at 1280x800 holds the result, the flags and the sign-off form;
a phone gets a "Sign off" link at the top; the notice after a sign-off names its screening;
the queue finds a screening by subject or form reference and shows who signed and when.
Screenshots go to test-artifacts/; with SCREENING_DOCS_SCREENSHOTS=1, to docs/screenshots/
(the README's pictures), so an ordinary run leaves the working tree clean.
"""

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect

from app.db.engine import make_engine, make_sessionmaker
from app.db.unit import session_scope
from app.engine import Ruleset
from tests.factories import CANDIDATE_ANSWERS, make_screening
from tests.server import running_server
from tests.ui.test_review_ui import Live, _axe, _seed, _sign_in, pytestmark

__all__ = ["pytestmark"]  # the skip marker of the review browser tests, reused
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / (
    "docs/screenshots" if os.environ.get("SCREENING_DOCS_SCREENSHOTS") else "test-artifacts"
)
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 360, "height": 740}


def _add_concussion_case(database_url: str, ruleset: Ruleset, clinic_id: uuid.UUID) -> None:
    """A screening whose flags need context: a 165/92 reading, a concussion 30 days back."""
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    answers = CANDIDATE_ANSWERS | {
        "concussion": "yes",
        "concussion_date": (now.date() - timedelta(days=30)).isoformat(),
        "systolic_bp": 165,
        "diastolic_bp": 92,
    }
    with session_scope(make_sessionmaker(engine)) as session:
        make_screening(session, ruleset=ruleset, clinic_id=clinic_id, answers=answers,
                       reference="MRN-CONC30", created_at=now - timedelta(hours=1))  # fmt: skip
    engine.dispose()


@pytest.fixture
def ux_live(empty_database_url: str, ruleset: Ruleset, tmp_path: Path) -> Iterator[Live]:
    """The seeded queue plus MRN-CONC30, served on each backend."""
    database_url = empty_database_url
    seeded, password = _seed(database_url, ruleset)
    _add_concussion_case(database_url, ruleset, seeded.clinic_id)
    with running_server(database_url, tmp_path) as server:
        yield Live(server.url, seeded, "newcomer@example.org", password)


def _docs_shot(page: Page, name: str, *, full_page: bool = False) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"{name}.png"), full_page=full_page)


def _flag(page: Page, title: str) -> Locator:
    return page.locator("section.flag").filter(has=page.locator("h3", has_text=title))


def _in_first_screen(page: Page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 40) <= 800


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_detail_first_screen_holds_result_flags_and_sign_off(
    ux_live: Live, browser: Browser, javascript: bool
) -> None:
    context = browser.new_context(java_script_enabled=javascript, viewport=LAPTOP)
    page = context.new_page()
    _sign_in(page, ux_live)
    page.get_by_role("link", name="MRN-CONC30").click()
    assert page.evaluate("window.scrollY") == 0
    summary = page.locator(".summary").first
    expect(summary).to_contain_text("Rules suggest")
    expect(summary).to_contain_text("Not a candidate")
    expect(summary).to_contain_text("42 years (born")
    for selector in [".summary", "section.flag mark", "form.sign-off", "#disposition"]:
        assert _in_first_screen(page, selector), selector
    for title in ["Uncontrolled blood pressure", "Elevated blood pressure"]:
        expect(_flag(page, title).locator("mark")).to_have_text("Patient answered: 165/92 mmHg")
    expect(_flag(page, "Recent concussion")).to_contain_text("days before screening")
    expect(page.locator("details.about")).not_to_have_attribute("open", "")
    expect(page.locator("details.about .code")).to_be_hidden()
    expect(page.locator(".jump-link")).to_be_hidden()  # the form is already in view
    if javascript:
        assert _axe(page) == []
        _docs_shot(page, "review-detail-1280x800")
    context.close()


def test_phone_has_a_sign_off_link_at_the_top(ux_live: Live, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = context.new_page()
    _sign_in(page, ux_live)
    page.get_by_role("link", name="MRN-CONC30").click()
    jump = page.get_by_role("link", name="Sign off", exact=True)
    assert _in_first_screen(page, ".jump-link")
    _docs_shot(page, "review-detail-phone")
    jump.click()
    expect(page).to_have_url(f"{page.url.split('#')[0].rstrip('#')}#sign-off")
    expect(page.locator("#disposition")).to_be_in_viewport()
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1]
    assert _axe(page) == []
    context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_declined_in_three_actions_and_the_notice_names_the_screening(
    ux_live: Live, browser: Browser, javascript: bool
) -> None:
    context = browser.new_context(java_script_enabled=javascript, viewport=LAPTOP)
    page = context.new_page()
    _sign_in(page, ux_live)
    actions = 0
    for control in [
        page.get_by_role("link", name="MRN-HEART-FAILURE"),  # the first in the queue
        page.get_by_label("Declined: not suitable"),
        page.get_by_role("button", name="Sign off and open next"),
    ]:
        box = control.bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= 800, "scrolling needed"
        assert page.evaluate("window.scrollY") == 0
        control.focus()
        page.keyboard.press("Space" if actions == 1 else "Enter")
        actions += 1
    assert actions == 3
    expect(page.get_by_role("status")).to_have_text(
        "MRN-HEART-FAILURE signed off: Declined: not suitable. Now showing MRN-CONC30."
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Screening MRN-CONC30")
    expect(page.locator(".summary").first).to_contain_text("Not yet signed off")

    page.goto(f"{ux_live.url}/review?status=signed")
    card = page.locator(".queue-item", has_text="MRN-HEART-FAILURE")
    expect(card).to_contain_text("Declined: not suitable by Dr Rivera")
    expect(card).not_to_contain_text("Waiting")
    page.goto(f"{ux_live.url}/review?status=all")
    signed = page.locator(".queue-item", has_text="MRN-HEART-FAILURE")
    expect(signed).not_to_contain_text("Waiting")
    expect(page.locator(".queue-item", has_text="MRN-PREGNANT")).to_contain_text("Waiting")
    if javascript:
        assert _axe(page) == []
        _docs_shot(page, "review-queue-all", full_page=True)
    context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_search_finds_by_subject_and_by_form_reference(
    ux_live: Live, browser: Browser, javascript: bool
) -> None:
    context = browser.new_context(java_script_enabled=javascript, viewport=LAPTOP)
    page = context.new_page()
    _sign_in(page, ux_live)
    page.get_by_role("link", name="MRN-PREGNANT").click()
    form_reference = page.locator(".summary .reference").inner_text()
    assert len(form_reference) == 9
    assert form_reference[4] == "-"
    page.get_by_role("link", name="Back to the queue").click()

    for query in ["MRN-PREGNANT", form_reference, form_reference.lower()]:
        page.get_by_label("Find a screening").fill(query)
        page.get_by_role("button", name="Search").click()
        expect(page.locator(".queue-link")).to_have_text(["MRN-PREGNANT"])
        expect(page.locator(".count")).to_contain_text("1 screening matching")
    page.get_by_label("Find a screening").fill("MRN-PREG")  # exact match only
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".queue-link")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("No flagged screening has")
    if javascript:
        assert _axe(page) == []
    context.close()


# The widest option text of each select against the room its box leaves for text.
_NARROW_SELECTS = """() => [...document.querySelectorAll('main select')].filter(select => {
  const style = getComputedStyle(select);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const widest = Math.max(...[...select.options].map(o => ctx.measureText(o.text).width));
  const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  const room = select.clientWidth - padding - 24;
  return widest > room;
}).map(select => select.id)"""


def test_queue_controls_are_wide_enough_for_their_longest_label(
    ux_live: Live, browser: Browser
) -> None:
    # At 1280 px. On a phone a select cannot be wider than the screen; the browser's own
    # option list then shows the full titles.
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    _sign_in(page, ux_live)
    assert page.evaluate(_NARROW_SELECTS) == []
    context.close()


def test_queue_screenshot_for_the_readme(ux_live: Live, browser: Browser) -> None:
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    _sign_in(page, ux_live)
    assert _axe(page) == []
    _docs_shot(page, "review-queue")
    context.close()


def test_home_page_has_no_wcag_violations(ux_live: Live, browser: Browser) -> None:
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(f"{ux_live.url}/")
    expect(page.get_by_role("link", name="API documentation")).to_have_attribute("href", "/docs")
    assert _axe(page) == []
    context.close()
