"""The patient form in headless Chromium against a real `screening serve` process.

Covers the acceptance criteria of the form issue: female and male paths, changing sex at birth
removes the pregnancy pages, submit and confirmation, the stored screening equals an API
submission; the same with JavaScript off at 320 px, and in Spanish; embedding through
embed.js (the iframe resizes; an unlisted origin is refused by frame-ancestors); axe-core on
every page, errors included. Policy v2 (issue 12): checklists with an exclusive "None of
these" (JavaScript unticks, the server refuses without it), their follow-ups, axe on every new
page and error state at 320 px with and without JavaScript, and at most 4 more pages than
under the v1 pack. Screenshots go to test-artifacts/form/.
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
from playwright.sync_api import Browser, Page
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
    V1_RULES,
    make_form_clinic,
    stored_screenings,
)
from tests.ui.browser import (
    Server,
    axe_violations,
    host_page,
    screenshot,
    serve,
)

FORM_HOST, CLINIC_HOST, STRANGER_HOST = "127.0.0.2", "127.0.0.1", "127.0.0.3"
NONE_NOT_ALONE = "Select 'None of these' on its own, or untick it and select the ones that apply."
CHOOSE_SOME_OR_NONE = "Select all that apply, or select 'None of these'."
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
    # Without JavaScript nothing unticks "None of these": the server says what to do.
    page.click('a[href*="/q/heart?change=1"]')
    assert page.locator('input[name="heart_brain_history"][value="none"]').is_checked()
    _answer(page, {"heart_brain_history": ["stroke"]})
    assert _errors_on(page) == [NONE_NOT_ALONE]
    assert page.locator('input[name="heart_brain_history"]:checked').count() == 2
    _check(page, "nojs320-13-heart-none-with-others", axe=False)
    page.uncheck('input[name="heart_brain_history"][value="stroke"]')
    _answer(page, {})
    assert page.url.endswith("/check")
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


def _without_form_scripts(page: Page) -> Page:
    """The page exactly as a browser without JavaScript shows it, but one axe-core can check.

    axe-core needs JavaScript to run. The form's CSP (``script-src 'self'``) allows no script
    but the form's own, so blocking those leaves the server-rendered, unenhanced page.
    """
    page.route("**/form/static/*.js", lambda route: route.abort())
    return page


def _tick(page: Page, name: str, values: list[str]) -> None:
    """Leave exactly ``values`` ticked among the checkboxes ``name`` (what a patient fixes)."""
    for box in page.locator(f'input[type=checkbox][name="{name}"]').all():
        if (box.get_attribute("value") in values) != box.is_checked():
            box.click()


def _ticked(page: Page, name: str) -> list[str]:
    boxes = page.locator(f'input[type=checkbox][name="{name}"]:checked').all()
    return [value for box in boxes if (value := box.get_attribute("value"))]


def _submit(page: Page) -> None:
    with page.expect_navigation():
        page.click("main form button[type=submit]")


def _errors_on(page: Page) -> list[str]:
    """The inline error messages, without their visually hidden "Error:" prefix."""
    texts = page.locator(".error-message").all_inner_texts()
    return [" ".join(text.split()).removeprefix("Error: ") for text in texts]


def _exclusive_none_with_javascript(page: Page) -> None:
    name = "heart_brain_history"
    _tick(page, name, ["stroke", "unsure"])
    assert _ticked(page, name) == ["stroke", "unsure"]
    page.click('label[for="heart_brain_history-10"]')  # "None of these", by its label
    assert _ticked(page, name) == ["none"]
    page.check('input[name="heart_brain_history"][value="tia"]')
    assert _ticked(page, name) == ["tia"]
    page.focus('input[name="heart_brain_history"][value="none"]')
    page.keyboard.press("Space")
    assert _ticked(page, name) == ["none"]
    page.focus('input[name="heart_brain_history"][value="unsure"]')
    page.keyboard.press("Space")
    assert _ticked(page, name) == ["unsure"]
    # Unticking does nothing to the others; "heart_failure" radios are another question.
    assert page.locator('input[name="heart_failure"]:checked').count() == 1


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_new_pages_and_their_errors_pass_axe_at_320px(
    site: Site, browser: Browser, javascript: bool
) -> None:
    page = _page(browser, viewport={"width": 320, "height": 640})
    name = f"v2-{'js' if javascript else 'nojs'}-320"
    if not javascript:
        _without_form_scripts(page)
    page.goto(site.invite())
    page.click("a.button--start")
    before = [page_id for page_id, _ in MALE_PAGES].index("heart")
    for _, data in MALE_PAGES[:before]:
        _answer(page, data)
    assert page.url.endswith("/q/heart")
    _check(page, f"{name}-01-heart")
    _answer(page, {"heart_failure": "no"})  # the checklist left empty
    assert _errors_on(page) == [CHOOSE_SOME_OR_NONE]
    _check(page, f"{name}-02-heart-empty")
    if javascript:
        _exclusive_none_with_javascript(page)
    else:
        _tick(page, "heart_brain_history", ["aneurysm", "none"])
        _submit(page)
        assert _errors_on(page) == [NONE_NOT_ALONE]
        assert _ticked(page, "heart_brain_history") == ["aneurysm", "none"]
        _check(page, f"{name}-03-heart-none-with-others")
    _tick(page, "heart_brain_history", ["stroke", "unsure"])
    _submit(page)
    assert page.url.endswith("/q/heart-2")
    _check(page, f"{name}-04-heart-recent")
    _submit(page)
    assert _errors_on(page) == [CHOOSE_SOME_OR_NONE]
    _check(page, f"{name}-05-heart-recent-empty")
    _tick(page, "heart_brain_recent", ["none"])
    _submit(page)
    assert page.url.endswith("/q/other_health")
    _check(page, f"{name}-06-other-health")
    _tick(page, "other_medical_conditions", ["overactive_thyroid", "none"])
    if javascript:  # ticking "None of these" last unticked the thyroid
        assert _ticked(page, "other_medical_conditions") == ["none"]
        _tick(page, "other_medical_conditions", ["overactive_thyroid"])
    else:
        _submit(page)
        assert _errors_on(page) == [NONE_NOT_ALONE]
        _check(page, f"{name}-07-other-health-none-with-others")
        _tick(page, "other_medical_conditions", ["overactive_thyroid"])
    _submit(page)
    assert page.url.endswith("/q/other_health-2")
    _check(page, f"{name}-08-thyroid")
    _answer(page, {"thyroid_controlled": "yes"})
    assert page.url.endswith("/q/mental_health")
    _check(page, f"{name}-09-mental-health")
    _submit(page)
    assert len(_errors_on(page)) == 3
    _check(page, f"{name}-10-mental-health-errors")
    _answer(page, {"schizophrenia": "no", "psychosis_or_mania": "unsure", "substance_use": "no"})
    _answer(page, {"ketamine_before": "yes"})
    assert page.url.endswith("/q/ketamine-2")
    _check(page, f"{name}-11-ketamine-allergy")
    _answer(page, {"ketamine_reaction": "no", "ketamine_allergy": "no"})
    assert page.url.endswith("/check")
    history = page.locator(".summary-list__row", has_text="told you that you had any of these?")
    assert history.locator(".summary-list__value").inner_text().splitlines() == [
        "A stroke", "I'm not sure about one or more of these",
    ]  # fmt: skip
    _check(page, f"{name}-12-check")
    page.click("main form button[type=submit]")
    assert page.url.endswith("/done")
    (stored,) = site.screenings()
    assert stored["answers"] == MALE_ANSWERS | {
        "heart_brain_history": ["stroke", "unsure"],
        "heart_brain_recent": ["none"],
        "other_medical_conditions": ["overactive_thyroid"],
        "thyroid_controlled": "yes",
        "psychosis_or_mania": "unsure",
        "ketamine_before": "yes",
        "ketamine_reaction": "no",
        "ketamine_allergy": "no",
    }


NO_EVERYWHERE = ("none", "no", "male", "migraine")  # the first of these each question offers


def _count_pages_answering_no(page: Page, invitation: str) -> list[str]:
    """Walk the real form answering "None of these" / "No"; the question pages seen."""
    page.goto(invitation)
    page.click("a.button--start")
    seen: list[str] = []
    while "/q/" in page.url and len(seen) < 40:
        seen.append(page.url.rsplit("/q/", 1)[1])
        if page.locator("#date_of_birth-month").count():
            page.fill("#date_of_birth-month", "3")
            page.fill("#date_of_birth-day", "27")
            page.fill("#date_of_birth-year", "1985")
        names = page.eval_on_selector_all(
            "main form input[type=radio], main form input[type=checkbox]",
            "inputs => [...new Set(inputs.map(input => input.name))]",
        )
        for name in names:
            offered = [f'input[name="{name}"][value="{value}"]' for value in NO_EVERYWHERE]
            choice = next((one for one in offered if page.locator(one).count()), None)
            if choice is not None:
                page.check(choice)
        _submit(page)
        assert page.locator(".error-message").count() == 0, seen[-1]
    assert page.url.endswith("/check"), seen
    return seen


def test_none_of_these_everywhere_adds_at_most_4_pages_to_the_v1_walk(
    site: Site, browser: Browser, empty_database_url: str, tmp_path: Path
) -> None:
    v2_pages = _count_pages_answering_no(_page(browser), site.invite())
    # A clinic of its own: a server pins a clinic without a pack to its default pack at start
    # (issue 13), so the site's clinic stays on v2 and this one starts on v1.
    with session_scope(make_sessionmaker(site.engine)) as session:
        v1_clinic, v1_key = make_form_clinic(session)
    with serve(empty_database_url, FORM_HOST, tmp_path / "v1.log", rules_dir=V1_RULES) as v1:
        v1_site = Site(v1, site.engine, v1_clinic, v1_key)
        v1_pages = _count_pages_answering_no(_page(browser), v1_site.invite())
    assert "heart_and_mind" in v1_pages
    assert {"heart", "other_health", "mental_health"} <= set(v2_pages)
    assert not {"heart-2", "other_health-2", "ketamine-2"} & set(v2_pages)  # no follow-ups
    assert 0 < len(v2_pages) - len(v1_pages) <= 4, (v1_pages, v2_pages)
