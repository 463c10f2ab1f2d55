"""Review pages in headless Chromium against a real `screening serve`: the flow, no-JS, axe.

Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) is driven by Playwright;
``playwright install`` is never needed. Screenshots go to ``test-artifacts/``.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from app.account import service as account_service
from app.audit import service as audit_service
from app.db import migrate
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Role
from app.db.unit import session_scope
from app.engine import Ruleset
from tests.review.seed import PASSWORD, Seeded, seed_queue
from tests.server import running_server

CHROMIUM = os.environ.get("SCREENING_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
QUEUE_ORDER = [
    "MRN-HEART-FAILURE", "MRN-PREGNANT", "MRN-UNSURE-CONCUSSION", "MRN-ELEVATED-BP",
    "MRN-V2-CHECKLIST",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and os.environ.get("CI") != "true",
    reason=f"{CHROMIUM} is not installed (CI installs it and never skips)",
)


@dataclass(frozen=True)
class Live:
    url: str
    seeded: Seeded
    # A physician created with a generated one-time password (must change it first).
    newcomer: str
    one_time_password: str


def _seed(database_url: str, ruleset: Ruleset) -> tuple[Seeded, str]:
    migrate.upgrade(migrate.make_config(database_url=database_url))
    engine = make_engine(database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        seeded = seed_queue(session, ruleset=ruleset, now=datetime.now(UTC))
        newcomer = account_service.create_user(
            session,
            clinic_name="Seed clinic",
            email="newcomer@example.org",
            role=Role.physician,
            display_name="Dr Newcomer",
            actor=audit_service.Actor.cli(),
            now=datetime.now(UTC),
        )
    engine.dispose()
    assert newcomer.password is not None
    return seeded, newcomer.password


@contextmanager
def _serve(database_url: str, ruleset: Ruleset, tmp_path: Path) -> Iterator[Live]:
    """Seed ``database_url`` and run `screening serve` on it until the block ends."""
    seeded, one_time_password = _seed(database_url, ruleset)
    with running_server(database_url, tmp_path) as server:
        yield Live(server.url, seeded, "newcomer@example.org", one_time_password)


@pytest.fixture
def live(empty_database_url: str, ruleset: Ruleset, tmp_path: Path) -> Iterator[Live]:
    """A server on each backend: for flows whose outcome depends on the database."""
    with _serve(empty_database_url, ruleset, tmp_path) as server:
        yield server


@pytest.fixture
def sqlite_live(ruleset: Ruleset, tmp_path: Path) -> Iterator[Live]:
    """A server on SQLite only: for what the backend cannot change (layout, accessibility)."""
    with _serve(f"sqlite:///{tmp_path / 'pages.db'}", ruleset, tmp_path) as server:
        yield server


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sign_in(page: Page, live: Live) -> None:
    page.goto(f"{live.url}/review")
    expect(page).to_have_url(f"{live.url}/sign-in?next=%2Freview")
    page.get_by_label("Email address").fill(live.seeded.physician)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live.url}/review")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_sign_in_review_and_sign_off_then_open_next(
    live: Live, browser: Browser, backend: str, javascript: bool
) -> None:
    context = browser.new_context(
        java_script_enabled=javascript, viewport={"width": 1100, "height": 900}
    )
    page = context.new_page()
    tag = f"{backend}-{'js' if javascript else 'nojs'}"
    _sign_in(page, live)
    expect(page.locator(".queue-link")).to_have_text(QUEUE_ORDER)
    _shot(page, f"queue-{tag}")

    page.get_by_role("link", name="MRN-HEART-FAILURE").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Screening MRN-HEART-FAILURE")
    flag = page.locator("section.flag", has_text="Heart failure")
    expect(flag.locator("dt")).to_have_text(
        "Has a doctor ever told you that you have heart failure?"
    )
    expect(flag.locator("mark")).to_have_text("Patient answered: Yes")
    _shot(page, f"detail-{tag}")

    # Clearing a fired exclusion without a reason: a clear error, nothing saved.
    page.get_by_label("Cleared for consultation").check()
    page.get_by_role("button", name="Sign off and open next").click()
    expect(page).to_have_title("Error: Screening MRN-HEART-FAILURE \N{EN DASH} Physician review")
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("Choose why you are clearing a patient with an exclusion flag.")
    expect(summary).to_contain_text("Write a note explaining why the exclusion does not apply.")
    _shot(page, f"detail-error-{tag}")

    page.get_by_label("Declined: not suitable").check()
    page.get_by_label("Note").fill("Heart failure confirmed with the patient; refer to cardiology.")
    page.get_by_role("button", name="Sign off and open next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Screening MRN-PREGNANT")
    expect(page.get_by_role("status")).to_have_text(
        "MRN-HEART-FAILURE signed off: Declined: not suitable. Now showing MRN-PREGNANT."
    )

    page.get_by_role("link", name="Back to the queue").click()
    expect(page.locator(".queue-link")).to_have_text(QUEUE_ORDER[1:])
    context.close()


def test_second_physician_on_the_same_version_sees_already_signed(
    live: Live, browser: Browser
) -> None:
    first, second = browser.new_context(), browser.new_context()
    pages = [first.new_page(), second.new_page()]
    for page, email in zip(pages, [live.seeded.physician, live.seeded.colleague], strict=True):
        page.goto(f"{live.url}/sign-in")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="MRN-ELEVATED-BP").click()
    for page, note in zip(pages, ["Fine to proceed.", "My note must survive."], strict=True):
        page.get_by_label("Cleared for consultation").check()
        page.get_by_label("Note").fill(note)
    pages[0].get_by_role("button", name="Sign off", exact=True).click()
    expect(pages[0].get_by_role("status")).to_have_text(
        "MRN-ELEVATED-BP signed off: Cleared for consultation."
    )
    pages[1].get_by_role("button", name="Sign off", exact=True).click()
    alert = pages[1].locator(".error-summary")
    expect(alert).to_contain_text("Already signed by Dr Rivera at")
    expect(pages[1].get_by_label("Note")).to_have_value("My note must survive.")
    expect(pages[1].locator(".history li")).to_have_count(1)
    _shot(pages[1], "detail-already-signed")
    first.close()
    second.close()


def _axe(page: Page) -> list[dict[str, Any]]:
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    violations: list[dict[str, Any]] = results.response["violations"]
    return [{"id": v["id"], "nodes": [n["target"] for n in v["nodes"]]} for v in violations]


def test_axe_finds_no_wcag_violations(sqlite_live: Live, browser: Browser) -> None:
    live = sqlite_live
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(f"{live.url}/sign-in")
    assert _axe(page) == []
    _shot(page, "sign-in")
    _sign_in(page, live)
    assert _axe(page) == []
    page.get_by_role("link", name="MRN-UNSURE-CONCUSSION").click()
    assert _axe(page) == []
    page.get_by_role("button", name="Sign off", exact=True).click()  # error state
    expect(page.locator(".error-summary")).to_be_visible()
    assert _axe(page) == []
    context.close()


def test_pages_reflow_at_320_px(sqlite_live: Live, browser: Browser) -> None:
    live = sqlite_live
    context = browser.new_context(viewport={"width": 320, "height": 640}, device_scale_factor=2)
    page = context.new_page()
    _sign_in(page, live)
    for path in ["/review", f"/review/screenings/{live.seeded.queue[1]}"]:
        page.goto(live.url + path)
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], path
    _shot(page, "detail-320px")
    context.close()


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (360, 740)], ids=["desktop", "360px"])
def test_v2_detail_page_is_accessible_and_reflows(
    sqlite_live: Live, browser: Browser, width: int, height: int
) -> None:
    live = sqlite_live
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    _sign_in(page, live)
    page.get_by_role("link", name="MRN-V2-CHECKLIST").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Screening MRN-V2-CHECKLIST")
    heart_attack = page.locator(".answers .choice-option", has_text="A heart attack")
    expect(heart_attack).to_contain_text("Fired: Heart attack, coronary disease or mini-stroke")
    expect(page.locator(".answers .choice-unsure").first).to_contain_text(
        "Not sure: I'm not sure about one or more of these"
    )
    expect(page.locator(".unsure-list .open-options").first).to_contain_text("A stroke")
    assert _axe(page) == []
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1]
    _shot(page, f"detail-v2-{width}px")
    context.close()


def test_one_time_password_must_be_changed_before_the_queue(
    sqlite_live: Live, browser: Browser
) -> None:
    live = sqlite_live
    context = browser.new_context()  # axe needs JavaScript; the pages themselves have none
    page = context.new_page()
    page.goto(f"{live.url}/review")
    page.get_by_label("Email address").fill(live.newcomer)
    page.get_by_label("Password").fill(live.one_time_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live.url}/account/password?next=%2Freview")
    expect(page.get_by_role("status")).to_contain_text("one-time password")
    assert _axe(page) == []
    page.goto(f"{live.url}/review")  # the queue stays closed until the password is changed
    expect(page.get_by_role("heading", level=1)).to_have_text("Change your password")
    page.get_by_label("One-time password").fill(live.one_time_password)
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password again").fill("short")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".error-summary")).to_contain_text("at least 12 characters")
    assert _axe(page) == []
    _shot(page, "change-password-error")
    page.get_by_label("One-time password").fill(live.one_time_password)
    page.get_by_label("New password", exact=True).fill("a long and private sentence")
    page.get_by_label("New password again").fill("a long and private sentence")
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(f"{live.url}/review")
    expect(page.get_by_role("heading", level=1)).to_have_text("Review queue")
    context.close()
