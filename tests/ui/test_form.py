"""The patient form in headless Chromium against a real `screening serve` process.

Covers the acceptance criteria of the form issue: female and male paths, changing sex at birth
removes the pregnancy pages, submit and confirmation, the stored screening equals an API
submission; the same with JavaScript off at 320 px, and in Spanish; embedding through
embed.js (the iframe resizes; an unlisted origin is refused by frame-ancestors); axe-core on
every page, errors included. Screenshots go to test-artifacts/form/.
"""

import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine

from app.audit import service as audit_service
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Clinic
from app.db.unit import session_scope
from app.invitation import service as invitation_service
from tests.factories import KEYRING
from tests.form.support import (
    FEMALE_ANSWERS,
    FEMALE_PAGES,
    MALE_ANSWERS,
    MALE_PAGES,
    make_form_clinic,
    stored_screenings,
)
from tests.ui.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Server,
    axe_violations,
    host_page,
    screenshot,
    serve,
)

FORM_HOST, CLINIC_HOST, STRANGER_HOST = "127.0.0.2", "127.0.0.1", "127.0.0.3"
DECISION_WORDS = ("candidate", "needs_review", "review", "exclude", "flag", "pregnancy_or")


@dataclass
class Site:
    """The running service, its database and one configured clinic."""

    server: Server
    engine: Engine
    clinic_id: uuid.UUID
    api_key: str

    def api(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.server.origin + path, json.dumps(body).encode(), method=method,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def invite(self, language: str = "en") -> str:
        body = {"subject": {"reference": "MRN-4242"}, "language": language}
        url: str = self.api("POST", "/v1/invitations", body)["url"]
        return url

    def configure(self, origins: list[str]) -> None:
        with session_scope(make_sessionmaker(self.engine)) as session:
            name = session.get_one(Clinic, self.clinic_id).name
            invitation_service.configure_clinic(
                session, clinic_name=name, phone=None, form_origins=origins,
                actor=audit_service.Actor.cli(),
            )  # fmt: skip

    def screenings(self) -> list[dict[str, Any]]:
        with session_scope(make_sessionmaker(self.engine)) as session:
            return stored_screenings(session, self.clinic_id)


@pytest.fixture
def site(empty_database_url: str, tmp_path: Path) -> Iterator[Site]:
    migrate.upgrade(migrate.make_config(database_url=empty_database_url))
    engine = make_engine(empty_database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        clinic_id, key = make_form_clinic(session)
    with serve(empty_database_url, FORM_HOST, tmp_path / "server.log") as server:
        yield Site(server, engine, clinic_id, key)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(browser: Browser, **options: Any) -> Page:
    context = browser.new_context(**({"viewport": {"width": 1024, "height": 800}} | options))
    context.set_default_timeout(15_000)
    return context.new_page()


def _check(page: Page, name: str, *, axe: bool = True) -> None:
    screenshot(page, name)
    if axe:
        assert axe_violations(page) == [], name


def _answer(page: Page, data: dict[str, Any]) -> None:
    for name, value in data.items():
        for one in value if isinstance(value, list) else [value]:
            choice = page.locator(f'input[name="{name}"][value="{one}"]')
            if choice.count():
                choice.check()
            else:
                page.fill(f'input[name="{name}"]', one)
    # Every submission loads a page (the next question, or this one with errors): wait for
    # it, so the caller never reads a document that is being replaced.
    with page.expect_navigation():
        page.click("main form button[type=submit]")


def _walk(
    page: Page, steps: list[tuple[str, dict[str, Any]]], prefix: str, *, axe: bool = True
) -> None:
    for number, (page_id, data) in enumerate(steps, start=1):
        assert page.url.endswith(f"/q/{page_id}"), (page.url, page_id)
        _check(page, f"{prefix}-{number:02d}-{page_id}", axe=axe)
        _answer(page, data)
    assert page.url.endswith("/check")


def _no_decision(text: str) -> None:
    lowered = text.lower()
    assert not [word for word in DECISION_WORDS if word in lowered]


def _same_as_api(site: Site, answers: dict[str, Any]) -> None:
    (stored,) = site.screenings()
    assert stored["source"] == "form"
    assert stored["answers"] == answers
    api = site.api("POST", "/v1/screenings", {
        "questionnaire": "ketamine-infusion-candidacy", "subject": {"reference": "MRN-4242"},
        "answers": answers,
    })  # fmt: skip
    assert stored["subject"] == api["subject"]
    for field in ("decision", "flags", "ruleset", "as_of"):
        assert stored["result"][field] == api[field], field


def test_female_path_then_change_to_male_with_javascript(site: Site, browser: Browser) -> None:
    page = _page(browser)
    page.goto(site.invite())
    _check(page, "en-00-start")
    page.click("a.button--start")
    page.click("main form button[type=submit]")  # nothing answered: errors
    assert page.title().startswith("Error:")
    assert page.evaluate("!!document.activeElement.closest('[data-error-summary]')")
    _check(page, "en-01-about_you-errors")
    _walk(page, FEMALE_PAGES, "en")
    _check(page, "en-10-check")
    assert page.locator("dt", has_text="Are you pregnant?").count() == 1
    page.go_back()
    assert page.locator('input[name="ketamine_before"][value="no"]').is_checked()
    page.go_forward()
    page.click('a[href$="/q/about_you?change=1#sex_at_birth"]')
    _answer(page, {"sex_at_birth": "male"})
    assert page.url.endswith("/check")
    assert page.locator("dt", has_text="Are you pregnant?").count() == 0
    _check(page, "en-11-check-after-change")
    page.click("main form button[type=submit]")
    assert page.url.endswith("/done")
    assert re.search(r"[0-9A-F]{4}-[0-9A-F]{4}", page.inner_text(".reference"))
    _no_decision(page.inner_text("main"))
    _check(page, "en-12-done")
    _same_as_api(site, MALE_ANSWERS)


def test_male_path_without_javascript_at_320px(site: Site, browser: Browser) -> None:
    page = _page(browser, java_script_enabled=False, viewport={"width": 320, "height": 640})
    page.goto(site.invite())
    page.click("a.button--start")
    page.click("main form button[type=submit]")
    assert page.title().startswith("Error:")
    _check(page, "nojs320-01-errors", axe=False)
    _walk(page, MALE_PAGES, "nojs320", axe=False)
    page.click("main form button[type=submit]")
    assert page.url.endswith("/done")
    _check(page, "nojs320-12-done", axe=False)
    _same_as_api(site, MALE_ANSWERS)


@pytest.mark.parametrize(
    ("width", "scale"), [(320, 1), (640, 2)], ids=["320px", "1280px-at-200-percent-zoom"]
)
def test_pages_reflow_and_targets_are_large(
    site: Site, browser: Browser, width: int, scale: int
) -> None:
    viewport = {"width": width, "height": 640}
    page = _page(browser, viewport=viewport, device_scale_factor=scale)
    page.goto(site.invite())
    with page.expect_navigation():
        page.click("a.button--start")
    for page_id, data in MALE_PAGES:
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        ), page_id
        for target in page.locator(
            "main input[type=radio], main input[type=checkbox], main button"
        ).all():
            box = target.bounding_box()
            assert box is not None
            assert min(box["width"], box["height"]) >= 24, page_id
        _answer(page, data)
    screenshot(page, f"reflow-{width}-check")
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_spanish_path_and_language_switch(site: Site, browser: Browser) -> None:
    page = _page(browser)
    page.goto(site.invite(language="es"))
    assert page.get_attribute("html", "lang") == "es"
    _check(page, "es-00-start")
    page.click("a.button--start")
    spanish = [
        (p, d | ({"date_of_birth-month": "marzo"} if p == "about_you" else {}))
        for p, d in FEMALE_PAGES
    ]
    _answer(page, spanish[0][1])
    assert page.url.endswith("/q/your_condition")
    page.click('a[hreflang="en"]')
    assert page.get_attribute("html", "lang") == "en"
    assert page.locator("h1").inner_text() == "Your health condition"
    page.click('a[hreflang="es"]')
    assert page.locator("h1").inner_text() == "Su problema de salud"
    page.click("a.back-link")
    assert page.input_value("#date_of_birth-month") == "3"  # "marzo", kept as the month
    assert page.locator("#sex_at_birth").is_checked()
    page.click("main form button[type=submit]")
    _walk(page, spanish[1:], "es")
    assert page.get_attribute("html", "lang") == "es"
    _check(page, "es-10-check")
    page.click("main form button[type=submit]")
    assert "Sus respuestas fueron enviadas" in page.inner_text("h1")
    _check(page, "es-11-done")
    _same_as_api(site, FEMALE_ANSWERS)


def test_link_problem_pages_are_friendly_and_accessible(site: Site, browser: Browser) -> None:
    page = _page(browser)
    url = site.invite()
    page.goto(url[:-3] + "xyz")
    assert page.inner_text("h1") == "This link does not work"
    _check(page, "problem-unknown")
    with session_scope(make_sessionmaker(site.engine)) as session:
        past = datetime.now(UTC) - timedelta(days=8)
        expired = invitation_service.create(
            session, keyring=KEYRING, clinic_id=site.clinic_id, subject={"reference": "x"},
            language="es", expires_at=None, now=past, actor=audit_service.Actor.cli(),
        )  # fmt: skip
    page.goto(site.server.origin + expired.path + "?lang=es")
    assert page.inner_text("h1") == "Este enlace ha caducado"
    _check(page, "problem-expired-es")


EMBED_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Riverside: before your visit</title></head>
<body><h1>Before your visit</h1>
<div data-screening-form="{url}" data-title="Health questions"></div>
<script src="{origin}/form/static/embed.js" async></script>
</body></html>"""


FRAME_HEIGHT = "document.querySelector('iframe').getBoundingClientRect().height"


def _frame_height(page: Page) -> float:
    height: float = page.evaluate(FRAME_HEIGHT)
    return height


def test_embedded_form_resizes_on_an_allowed_origin(site: Site, browser: Browser) -> None:
    url = site.invite()
    html = EMBED_PAGE.format(url=url, origin=site.server.origin)
    with host_page(CLINIC_HOST, html) as clinic_origin:
        site.configure([clinic_origin])
        page = _page(browser, viewport={"width": 800, "height": 1600})
        page.goto(clinic_origin)
        frame = page.frame_locator("iframe")
        frame.locator("a.button--start").wait_for()
        page.wait_for_function("document.querySelector('iframe').style.height !== ''")
        start_height = _frame_height(page)
        content = page.frames[1].evaluate("document.documentElement.getBoundingClientRect().height")
        assert abs(start_height - content) <= 2
        frame.locator("a.button--start").click()
        frame.locator("#date_of_birth-month").wait_for()
        content = page.frames[1].evaluate("document.documentElement.getBoundingClientRect().height")
        assert abs(content - start_height) > 20
        page.wait_for_function(f"Math.abs({FRAME_HEIGHT} - {content}) <= 2")
        # A message that does not come from the form's iframe is ignored.
        page.evaluate("window.postMessage({type: 'screening-form:resize', height: 50}, '*')")
        page.wait_for_timeout(300)
        assert abs(_frame_height(page) - content) <= 2
        screenshot(page, "embed-allowed")


def test_embedding_on_an_unlisted_origin_is_refused(site: Site, browser: Browser) -> None:
    url = site.invite()
    with host_page(CLINIC_HOST, "") as allowed:
        site.configure([allowed])
    html = EMBED_PAGE.format(url=url, origin=site.server.origin)
    with host_page(STRANGER_HOST, html) as stranger:
        page = _page(browser)
        messages: list[str] = []
        page.on("console", lambda message: messages.append(message.text))
        page.goto(stranger)
        page.wait_for_function("document.querySelector('iframe') !== null")
        page.wait_for_timeout(1500)
        blocked = [m for m in messages if "frame-ancestors" in m]
        assert blocked, messages
        assert page.frame_locator("iframe").locator("a.button--start").count() == 0
        screenshot(page, "embed-refused")


def test_server_output_never_contains_the_token(site: Site, browser: Browser) -> None:
    page = _page(browser, java_script_enabled=False)
    url = site.invite()
    page.goto(url)
    page.click("a.button--start")
    _answer(page, MALE_PAGES[0][1])
    token = url.rsplit("/", 1)[1]
    output = site.server.output()
    assert "/form/{clinic_id}/{token}/q/{page_id}" in output
    assert token not in output


def test_keyboard_focus_is_visible(site: Site, browser: Browser) -> None:
    page = _page(browser)
    page.goto(site.invite())
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the language switch
    page.keyboard.press("Tab")  # the start button
    focused = page.evaluate("document.activeElement.className")
    assert "button--start" in focused
    background = page.evaluate("getComputedStyle(document.activeElement).backgroundColor")
    assert background == "rgb(255, 221, 0)"  # the yellow focus style
    page.keyboard.press("Enter")
    page.wait_for_url("**/q/about_you")
    page.focus("#date_of_birth-month")
    page.keyboard.type("3")
    page.keyboard.press("Tab")
    page.keyboard.type("27")
    page.keyboard.press("Tab")
    page.keyboard.type("1985")
    page.keyboard.press("Tab")  # the first radio
    page.keyboard.press("Space")
    screenshot(page, "keyboard-focus")
    assert page.locator("#sex_at_birth").is_checked()
    page.keyboard.press("Tab")  # the Continue button (one tab stop for the radio group)
    page.keyboard.press("Enter")
    page.wait_for_url("**/q/your_condition")
