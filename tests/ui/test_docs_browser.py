"""The self-hosted API docs render in Chromium from a production server (docs turned on).

A real `screening serve` process in production mode with ``SCREENING_DOCS_ENABLED=true``; the
browser must render Swagger UI and ReDoc with every script and stylesheet from the server's
own origin, no integrity or CSP error, and no request to another site. Screenshots go to
``test-artifacts/docs/``.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.server import Server, migrated_with_key, running_server
from tests.ui.browser import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "docs"
TITLE = "Candidacy screening API"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("docs")
    database_url = f"sqlite:///{workdir / 'docs.db'}"
    migrated_with_key(database_url)
    production = {
        "SCREENING_ENVIRONMENT": "prod",
        "SCREENING_PUBLIC_BASE_URL": "https://screening.clinic.example",
        "SCREENING_DOCS_ENABLED": "true",
    }
    with running_server(database_url, workdir, workers=1, **production) as running:
        yield running


def _open(browser: Browser, url: str) -> tuple[Page, list[str], list[str]]:
    """A page at ``url``; the console errors and what it fetched from other origins."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    foreign: list[str] = []
    origin = url.split("/", 3)[:3]
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(  # what was fetched (a request the CSP blocks never gets a response)
        "response",
        lambda r: (
            foreign.append(r.url)
            if r.url.split("/", 3)[:3] != origin and not r.url.startswith(("data:", "blob:"))
            else None
        ),
    )
    page.goto(url)
    return page, errors, foreign


def _screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def test_swagger_ui_renders_from_the_servers_own_assets(server: Server, browser: Browser) -> None:
    page, errors, foreign = _open(browser, f"{server.url}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert TITLE in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() > 10  # every operation of the API is listed
    assert _screenshot(page, "swagger-ui").stat().st_size > 10_000
    assert errors == []
    assert foreign == []


def test_redoc_renders_from_the_servers_own_assets(server: Server, browser: Browser) -> None:
    page, errors, foreign = _open(browser, f"{server.url}/redoc")
    page.wait_for_selector("h1", timeout=30_000)
    assert TITLE in page.inner_text("h1")
    page.wait_for_selector("h2", timeout=30_000)
    assert _screenshot(page, "redoc").stat().st_size > 10_000
    # ReDoc always shows its maker's logo from their CDN; the CSP blocks it (and only it).
    assert [e for e in errors if "https://cdn.redoc.ly/redoc/logo-mini.svg" not in e] == []
    assert foreign == []
