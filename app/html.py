"""Server-rendered pages: the Jinja2 templates, static files, security headers, error pages.

Every response gets ``X-Content-Type-Options``, a ``Referrer-Policy`` and a CSP with
``frame-ancestors 'none'`` unless its route already set its own (the embeddable patient form
sets per-clinic ``frame-ancestors``). Pages allow no script at all, inline or not: they work
without JavaScript, and an injected ``<script>`` cannot run.

Errors on a page path (``PAGE_PREFIXES``) are friendly HTML pages with the same status code
(4xx, and 500 for an unhandled exception); every other path keeps the JSON problem handlers.
"""

import inspect
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from app.errors import AppError

_APP_DIR = Path(__file__).resolve().parent
templates = Jinja2Templates(
    directory=[
        _APP_DIR / "account" / "templates",
        _APP_DIR / "review" / "templates",
        _APP_DIR / "home" / "templates",
        _APP_DIR / "rulepack" / "templates",
    ]
)


class SignInRequired(Exception):
    """No valid browser session: the HTML handler redirects to the sign-in page.

    ``had_session``: the browser sent a session cookie that is no longer valid (idle or
    absolute timeout, signed out elsewhere), so the page can say the session has ended.
    """

    def __init__(self, *, had_session: bool = False) -> None:
        super().__init__("sign-in required")
        self.had_session = had_session


class PasswordChangeRequired(Exception):
    """Signed in with a one-time password: the HTML handler redirects to change it."""


PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
_PAGE_CSP, _OTHER_CSP = PAGE_CSP.encode(), OTHER_CSP.encode()
# Production only: browsers then refuse plain http to this host for a year (ASVS 5.0 3.4.1).
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
NO_STORE = (b"cache-control", b"no-store")
STATIC_PREFIX = "/static/"
# The interactive docs (app/home/docs.py) send their own CSP: their scripts need more.
_DOCS_PATHS = ("/docs", "/redoc")
# Paths whose errors are HTML pages; the JSON API (/v1) and the patient form keep their own.
PAGE_PREFIXES = ("/review", "/sign-in", "/sign-out", "/account")
CHANGE_PASSWORD_PATH = "/account/password"
# Title and explanation of each error page; nothing on them echoes what was submitted.
_ERRORS = {
    400: ("This request could not be understood", "Nothing was saved. Go back and try again."),
    401: (
        "Your session has ended",
        "For your security you are signed out after 15 minutes without activity, and 12 hours "
        "after signing in. Nothing was saved. Sign in again, then send the form again.",
    ),
    403: ("You cannot do this", "Your account is not allowed to do this. Nothing was changed."),
    404: (
        "Page not found",
        "There is nothing at this address for your clinic. Check the address, or start again "
        "from the review queue.",
    ),
    405: ("This page cannot be used this way", "Nothing was saved. Start again from the queue."),
    413: (
        "What you sent is too large",
        "Nothing was saved. Go back, shorten what you entered and try again.",
    ),
    422: (
        "Something in the address or the form is not valid",
        "Nothing was saved. Go back, check what you entered and try again.",
    ),
    500: (
        "Something went wrong on our side",
        "Nothing was saved. Try again in a moment. If it keeps happening, tell your clinic "
        "administrator and quote the reference below.",
    ),
}


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """Render a page template (autoescaped) with ``context``."""
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def safe_next(path: str | None) -> str:
    """A same-site path to go to after sign-in (never another site: no open redirect)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/review"
    return path


def add_security_headers(
    message: Message, *, is_docs: bool, is_asset: bool = False, is_hsts: bool = False
) -> None:
    """Add the security headers a response start ``message`` does not already carry.

    Called by ``app.observability.HttpMiddleware`` for every response of the app (one scan of
    the raw header list instead of a ``MutableHeaders`` lookup per header). Every response
    but a static asset (``is_asset``) gets ``Cache-Control: no-store`` unless its route chose
    its own: API bodies and pages may carry PHI, and no browser or proxy may keep them.
    ``is_hsts`` (production) adds ``Strict-Transport-Security``.
    """
    headers = list(message.get("headers", ()))
    message["headers"] = headers
    names = set()
    content_type = ""
    for name, value in headers:
        if name == b"content-type" and name not in names:
            content_type = value.decode("latin-1")
        names.add(name)
    is_html = content_type.startswith("text/html")
    if b"x-content-type-options" not in names:
        headers.append((b"x-content-type-options", b"nosniff"))
    # same-origin, not no-referrer: browsers send "Origin: null" on a POST under
    # no-referrer, which would defeat the Origin check of our own forms.
    if b"referrer-policy" not in names:
        headers.append((b"referrer-policy", b"same-origin"))
    if not is_docs and b"content-security-policy" not in names:
        headers.append((b"content-security-policy", _PAGE_CSP if is_html else _OTHER_CSP))
        if b"x-frame-options" not in names:
            headers.append((b"x-frame-options", b"DENY"))
    if not is_asset and b"cache-control" not in names:
        headers.append((b"cache-control", b"no-store"))
    if is_hsts and b"strict-transport-security" not in names:
        headers.append(HSTS)


def is_asset_path(path: str) -> bool:
    """Whether ``path`` is a static asset (stylesheets, scripts: cacheable, never PHI)."""
    return path.startswith(STATIC_PREFIX)


def is_docs_path(path: str) -> bool:
    """Whether ``path`` is FastAPI's interactive docs (they keep their own CSP)."""
    return path.startswith(_DOCS_PATHS)


def is_page(path: str) -> bool:
    """Whether ``path`` is a server-rendered page (its errors are HTML, not JSON)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PAGE_PREFIXES)


def error_page(
    request: Request,
    status_code: int,
    *,
    message: str | None = None,
    headers: dict[str, str] | None = None,
    sign_in_next: str | None = None,
) -> Response:
    """A friendly error page with ``status_code`` (and the request id to quote)."""
    title, default = _ERRORS.get(status_code, (HTTPStatus(status_code).phrase, ""))
    context = {
        "title": title,
        "message": message or default,
        "request_id": str(request.scope.get("state", {}).get("request_id", "")),
        "sign_in_next": sign_in_next,
    }
    response = render(request, "error.html", context, status_code=status_code)
    response.headers.update(headers or {})
    return response


def _target(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _referring_page(request: Request) -> str:
    """The same-site page a form was sent from (to return to after signing in again)."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.headers.get("host", "") or not is_page(referer.path):
        return "/review"
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


async def _redirect_to_sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    if request.method not in {"GET", "HEAD"}:
        # A form sent after the session ended: say so, and save nothing.
        return error_page(request, 401, sign_in_next=_referring_page(request))
    query = {"next": _target(request)} | ({"expired": "true"} if exc.had_session else {})
    return RedirectResponse(f"/sign-in?{urlencode(query, quote_via=quote)}", status_code=303)


async def _redirect_to_change_password(request: Request, _exc: Exception) -> Response:
    target = _target(request) if request.method in {"GET", "HEAD"} else "/review"
    return RedirectResponse(
        f"{CHANGE_PASSWORD_PATH}?next={quote(target, safe='')}", status_code=303
    )


PageHandler = Callable[[Request, Any], Response | Awaitable[Response]]


def _page_errors_or(api_handler: PageHandler) -> PageHandler:
    """An exception handler that renders an error page on page paths, else ``api_handler``."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not is_page(request.url.path):
            response = api_handler(request, exc)
            return await response if inspect.isawaitable(response) else response
        if isinstance(exc, AppError):
            message = exc.detail if exc.status < 500 else None
            return error_page(request, exc.status, message=message, headers=exc.headers)
        if isinstance(exc, StarletteHTTPException):
            return error_page(request, exc.status_code, headers=dict(exc.headers or {}))
        return error_page(request, 422)

    return handle


async def send_error_page(scope: Scope, receive: Receive, send: Send, status: int = 500) -> None:
    """Send an error page from outside the app (``app.observability.HttpMiddleware``).

    The 500 page for an unhandled exception on a page path (before any response), or the 413
    page for a body over the limit.
    """
    await error_page(Request(scope, receive), status)(scope, receive, send)


def install(app: FastAPI) -> None:
    """Mount the stylesheet; add the sign-in redirects and error pages.

    Call after ``app.errors.install_handlers``: page paths wrap its JSON handlers. The
    security headers and the 500 page of an unhandled exception are sent by
    ``app.observability.HttpMiddleware`` (``add_security_headers``, ``send_error_page``).
    """
    app.mount(
        "/static/review",
        StaticFiles(directory=_APP_DIR / "review" / "static"),
        name="review-static",
    )
    app.add_exception_handler(SignInRequired, _redirect_to_sign_in)
    app.add_exception_handler(PasswordChangeRequired, _redirect_to_change_password)
    for family in (AppError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(family, _page_errors_or(app.exception_handlers[family]))


def forbidden(request: Request) -> Response:
    """The page shown when a form fails the CSRF or origin check (nothing was changed)."""
    return render(request, "forbidden.html", {}, status_code=403)


def _when(value: datetime) -> str:
    # Unambiguous for any locale, and in UTC like every stored time.
    utc = value.astimezone(UTC)
    return f"{utc.day} {utc:%b %Y, %H:%M} UTC"


def _day(value: date) -> str:
    # The one date format of the physician's pages: 2 Dec 2026.
    return f"{value.day} {value:%b %Y}"


def _waited(since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


templates.env.filters["when"] = _when
templates.env.filters["waited"] = _waited
templates.env.filters["day"] = _day
