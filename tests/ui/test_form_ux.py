"""The patient form's slips (issue 17) in headless Chromium, with and without JavaScript.

A swapped blood pressure reading is checked, confirmed, and shown to the physician as
confirmed; no page says "Contact" without a phone number; the date boxes stay on one line in
the error state on a phone; axe finds nothing on the changed pages. With
SCREENING_DOCS_SCREENSHOTS=1 the check page's screenshot goes to docs/screenshots/.
"""

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from app.db.engine import make_sessionmaker
from app.db.models import Clinic
from app.db.unit import session_scope
from tests.form.support import FEMALE_PAGES
from tests.review.seed import PASSWORD, make_user
from tests.ui.browser import axe_violations, screenshot
from tests.ui.test_form import Site, _answer, _page, site

__all__ = ["site"]  # a fixture reused from the form's browser tests
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
READING_PAGE = "blood_pressure-2"
SWAPPED = {"bp_controlled": "yes", "systolic_bp": "76", "diastolic_bp": "118"}
PHONE_WIDTH = {"width": 360, "height": 740}


def _docs_shot(page: Page, name: str) -> None:
    if os.environ.get("SCREENING_DOCS_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)
    screenshot(page, name)


def _to_reading(page: Page, site: Site) -> str:
    link = site.invite()
    page.goto(link)
    page.click("a.button--start")
    for page_id, data in FEMALE_PAGES:
        if page_id == READING_PAGE:
            break
        _answer(page, data)
    return link


def _rest(page: Page) -> None:
    after = [step for step in FEMALE_PAGES if step[0] != READING_PAGE]
    for _, data in after[[p for p, _ in after].index("head_and_brain") :]:
        _answer(page, data)
    assert page.url.endswith("/check")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.url.endswith("/done")


def _set_phone(site: Site, phone: str | None) -> str:
    with session_scope(make_sessionmaker(site.engine)) as session:
        clinic = session.get_one(Clinic, site.clinic_id)
        clinic.phone = phone
        return clinic.name


def _physician_sees(page: Page, site: Site, clinic: str, text: str) -> None:
    with session_scope(make_sessionmaker(site.engine)) as session:
        make_user(session, clinic=clinic, email="form-reader@example.org", name="Dr Reader")
    page.goto(f"{site.server.origin}/sign-in")
    page.get_by_label("Email address").fill("form-reader@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="MRN-4242").click()
    expect(page.locator("section.flag").first).to_contain_text(text)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_swapped_reading_is_checked_confirmed_and_shown_to_the_physician(
    site: Site, browser: Browser, javascript: bool
) -> None:
    page = _page(browser, java_script_enabled=javascript, viewport=PHONE_WIDTH)
    link = _to_reading(page, site)
    _answer(page, SWAPPED)
    assert page.url.endswith(f"/q/{READING_PAGE}")
    check = page.locator(".check-summary")
    expect(check).to_contain_text("The top number is usually bigger than the bottom number.")
    expect(page.locator("#systolic_bp")).to_have_value("76")
    if javascript:
        assert page.evaluate("!!document.activeElement.closest('[data-error-summary]')")
        assert axe_violations(page) == []
        _docs_shot(page, "form-blood-pressure-check")
    _answer(page, {"reading-confirmed": "76/118"})
    assert not page.url.endswith(f"/q/{READING_PAGE}")
    _rest(page)
    clinic = _set_phone(site, "(555) 010-2030")
    page.goto(link)  # the link again: "already sent", with the number to call
    expect(page.locator("main")).to_contain_text("You have already sent your answers")
    expect(page.locator(".help-line")).to_contain_text("(555) 010-2030")
    if javascript:
        assert axe_violations(page) == []
    _physician_sees(page, site, clinic, "76/118 mmHg (the patient confirmed these numbers")
    page.context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_no_page_says_contact_without_a_phone_number(
    site: Site, browser: Browser, javascript: bool
) -> None:
    page = _page(browser, java_script_enabled=javascript, viewport=PHONE_WIDTH)
    link = site.invite()
    _set_phone(site, None)  # a clinic set up before a phone number was required
    seen: list[str] = []
    page.goto(link)
    seen.append(page.inner_text("body"))
    page.click("a.button--start")
    seen.append(page.inner_text("body"))
    page.goto(link.rsplit("/", 1)[0] + "/not-a-real-token")
    seen.append(page.inner_text("body"))
    for text in seen:
        assert "Contact" not in text
        assert "Need help" not in text
    page.context.close()


@pytest.mark.parametrize("width", [320, 360])
def test_date_boxes_stay_on_one_line_in_the_error_state(
    site: Site, browser: Browser, width: int
) -> None:
    page = _page(browser, viewport={"width": width, "height": 700})
    page.goto(site.invite())
    page.click("a.button--start")
    bad: dict[str, Any] = {"date_of_birth-month": "13", "date_of_birth-day": "40",
                           "date_of_birth-year": "1985", "sex_at_birth": "female"}  # fmt: skip
    _answer(page, bad)
    assert page.title().startswith("Error:")
    tops = [
        page.locator(f"#date_of_birth-{part}").bounding_box() for part in ("month", "day", "year")
    ]
    assert all(box is not None for box in tops)
    assert len({round(box["y"]) for box in tops if box is not None}) == 1
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1]
    assert axe_violations(page) == []
    screenshot(page, f"date-error-{width}px")
    page.context.close()
