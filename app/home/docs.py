"""The interactive API docs (/docs, /redoc) from self-hosted assets with integrity hashes.

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN: a third party would then run
script on an origin whose cookies open physicians' pages, and a compromised CDN could serve
anything. Here the pages load byte-identical vendored copies (``static/docs/VENDORED.txt``)
from this origin, each with a Subresource Integrity hash pinned below: a file altered on disk
is refused by the browser. In production the docs and ``/openapi.json`` are off unless
``SCREENING_DOCS_ENABLED=true`` (``Settings.are_docs_on``).
"""

from html import escape
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.html import STATIC_PREFIX
from app.settings import Settings

ASSET_DIR = Path(__file__).with_name("static") / "docs"
ASSET_PATH = f"{STATIC_PREFIX}docs"
OPENAPI_PATH = "/openapi.json"
# sha384 of each file as vendored; a new version means a new pin (see VENDORED.txt).
ASSETS = {
    "swagger-ui-bundle.js": "fUpRgC19yPykTqzdrUbdAg8NTiu16NEKf9U12J+IJWCg8/1mEI8f2+PEIz60Wyd+",
    "swagger-ui.css": "z/AtSaOHGn5MJ5auAHXUypohywlIWLBZo1jeGmhdpVIbCnFhxAH92cwdV41oyINc",
    "swagger-init.js": "1DcdSvfTVpat7SkCXUt13+Ny+E+nMDdI2l2hxvnzNag8SA9roFhsHfujKZG7EQE9",
    "redoc.standalone.js": "w447zOpYfw/1Tv/5AK9NfHTlQIqE3RVR6KY62jCyy9zNDgO64cMwGGP1Fj0zJVf5",
}
# Scripts and styles from this origin only; both UIs set inline styles, and ReDoc searches in
# a blob: worker. Nothing may frame the docs.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {"Content-Security-Policy": DOCS_CSP, "X-Frame-Options": "DENY"}


def fastapi_options(settings: Settings) -> dict[str, Any]:
    """``FastAPI(...)`` arguments: its CDN docs off; the OpenAPI document only if docs are on."""
    return {
        "docs_url": None,
        "redoc_url": None,
        "openapi_url": OPENAPI_PATH if settings.are_docs_on else None,
    }


def _script(name: str) -> str:
    return f'<script src="{ASSET_PATH}/{name}" integrity="sha384-{ASSETS[name]}"></script>'


def _page(title: str, head: str, body: str) -> HTMLResponse:
    document = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'  # no /favicon.ico request (a 404)
        f"<title>{escape(title)}</title>\n{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )
    return HTMLResponse(document, headers=_HEADERS)


def swagger_page(title: str) -> HTMLResponse:
    """The Swagger UI page: try the API from the browser."""
    css = ASSETS["swagger-ui.css"]
    head = f'<link rel="stylesheet" href="{ASSET_PATH}/swagger-ui.css" integrity="sha384-{css}">\n'
    body = (
        f'<div id="swagger-ui" data-openapi-url="{OPENAPI_PATH}"></div>\n'
        f"{_script('swagger-ui-bundle.js')}\n{_script('swagger-init.js')}\n"
    )
    return _page(f"{title} - Swagger UI", head, body)


def redoc_page(title: str) -> HTMLResponse:
    """The ReDoc page: the API reference to read (it starts itself from ``spec-url``)."""
    body = f'<redoc spec-url="{OPENAPI_PATH}"></redoc>\n{_script("redoc.standalone.js")}\n'
    return _page(f"{title} - ReDoc", "", body)


def install(app: FastAPI, settings: Settings) -> None:
    """Serve /docs, /redoc and their assets when the docs are on; nothing otherwise."""
    if not settings.are_docs_on:
        return
    app.mount(ASSET_PATH, StaticFiles(directory=ASSET_DIR), name="docs-static")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def get_swagger_docs() -> HTMLResponse:
        return swagger_page(title)

    @app.get("/redoc", include_in_schema=False)
    def get_redoc_docs() -> HTMLResponse:
        return redoc_page(title)
