"""Sign-in, sign-out and change-password pages (server-rendered, no JavaScript)."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.account import sessions
from app.account.auth import SignedInDep, is_same_origin, is_valid_form, session_cookie
from app.account.schemas import ChangePasswordForm, SignInForm, SignOutForm
from app.account.throttle import Busy, SourceThrottle, seconds_until
from app.apikey.auth import forget_credentials
from app.context import ClockDep, KeyRingDep, RequestIdDep, SessionDep, context_of
from app.errors import ValidationFailed
from app.html import (
    CHANGE_PASSWORD_PATH,
    forbidden,
    render,
    safe_next,
)

router = APIRouter(include_in_schema=False)
NextQuery = Annotated[str, Query(alias="next", max_length=2000)]
SIGNED_OUT = "You have signed out."
EXPIRED = (
    "Your session has ended: for your security you are signed out after 15 minutes without "
    "activity. Sign in again to continue."
)
SOURCE_WAITING = (
    "Too many unsuccessful sign-ins from your network. For your security, wait a few minutes "
    "and try again."
)
MUST_CHANGE = "You signed in with a one-time password. Choose your own password to continue."
_PASSWORD_FIELDS = {"#/current": "current_password", "#/new": "new_password"}


@router.get("/sign-in")
def sign_in_page(
    request: Request, next_path: NextQuery = "", signed_out: bool = False, expired: bool = False
) -> Response:
    """The sign-in form (with a notice after signing out or when the session ended)."""
    notice = SIGNED_OUT if signed_out else EXPIRED if expired else ""
    return render(request, "sign_in.html", {"next": safe_next(next_path), "notice": notice})


@router.post("/sign-in")
def sign_in(
    request: Request,
    form: Annotated[SignInForm, Form()],
    session: SessionDep,
    keyring: KeyRingDep,
    clock: ClockDep,
    request_id: RequestIdDep,
) -> Response:
    """Check the credentials; start a new session and go on (via a one-time password change).

    429 while the source address or the email must wait (``throttle``), 503 while too many
    password verifications run; neither verifies the password.
    """
    if not is_same_origin(request):
        return forbidden(request)
    now, sources = clock.now(), context_of(request).component(SourceThrottle, SourceThrottle)
    source = request.client.host if request.client is not None else "unknown"
    until = sources.blocked_until(source, now)
    if until is not None:
        return _refused(request, form, SOURCE_WAITING, 429, seconds_until(until, now))
    try:
        result = sessions.sign_in(
            session, email=form.email, password=form.password, totp_code=form.code,
            keyring=keyring, now=now, request_id=request_id,
        )  # fmt: skip
    except Busy as busy:
        return _refused(request, form, busy.detail, 503, 1)
    if result.token is None:
        sources.fail(source, now)
        return _refused(request, form, result.message, 429 if result.is_locked else 400, None)
    return _signed_in(request, result.token, safe_next(form.next), result.must_change_password)


def _refused(
    request: Request, form: SignInForm, message: str, status: int, retry_after: int | None
) -> Response:
    context = {"next": safe_next(form.next), "error": message, "email": form.email}
    response = render(request, "sign_in.html", context, status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _signed_in(request: Request, token: str, target: str, must_change_password: bool) -> Response:
    if must_change_password:  # the queue stays closed until the one-time password is replaced
        target = f"{CHANGE_PASSWORD_PATH}?next={quote(target, safe='')}"
    return _with_cookie(request, RedirectResponse(target, status_code=303), token)


def _with_cookie(request: Request, response: Response, token: str) -> Response:
    name, is_secure = session_cookie(request)
    # No Max-Age: the cookie dies with the browser; the server enforces idle and absolute limits.
    response.set_cookie(name, token, httponly=True, secure=is_secure, samesite="lax", path="/")
    return response


@router.post("/sign-out")
def sign_out(
    request: Request,
    form: Annotated[SignOutForm, Form()],
    web_user: SignedInDep,
    session: SessionDep,
    clock: ClockDep,
    request_id: RequestIdDep,
) -> Response:
    """End the session on the server and clear the cookie."""
    if not is_valid_form(request, web_user, form.csrf_token):
        return forbidden(request)
    sessions.end(session, web_user=web_user, now=clock.now(), request_id=request_id)
    response = RedirectResponse("/sign-in?signed_out=true", status_code=303)
    name, is_secure = session_cookie(request)
    response.delete_cookie(name, path="/", secure=is_secure, httponly=True, samesite="lax")
    return response


@router.get(CHANGE_PASSWORD_PATH)
def change_password_page(
    request: Request, web_user: SignedInDep, next_path: NextQuery = ""
) -> Response:
    """The change-password form (where a one-time password sends its user first)."""
    return _password_page(request, web_user, safe_next(next_path))


@router.post(CHANGE_PASSWORD_PATH)
def change_password(
    request: Request,
    form: Annotated[ChangePasswordForm, Form()],
    web_user: SignedInDep,
    session: SessionDep,
    clock: ClockDep,
    request_id: RequestIdDep,
) -> Response:
    """Set a new password (this session stays, other sessions and all tokens end); go on."""
    if not is_valid_form(request, web_user, form.csrf_token):
        return forbidden(request)
    change = sessions.PasswordChange(
        form.current_password, form.new_password, form.confirm_password
    )
    try:
        sessions.change_password(
            session, web_user=web_user, change=change, now=clock.now(), request_id=request_id
        )
    except ValidationFailed as invalid:
        return _password_page(request, web_user, safe_next(form.next), invalid)
    except sessions.LockedOut as locked:  # the session has ended: back to signing in
        response = render(request, "sign_in.html", {"next": "", "error": str(locked)}, 429)
        name, is_secure = session_cookie(request)
        response.delete_cookie(name, path="/", secure=is_secure, httponly=True, samesite="lax")
        return response
    forget_credentials(request)  # the user's personal tokens were revoked: drop cached ones
    return RedirectResponse(safe_next(form.next), status_code=303)


def _password_page(
    request: Request,
    web_user: sessions.WebUser,
    next_path: str,
    invalid: ValidationFailed | None = None,
) -> Response:
    items = [
        (_PASSWORD_FIELDS.get(e.pointer or "", "confirm_password"), e.message)
        for e in (invalid.errors if invalid else [])
    ]
    context = {
        "web_user": web_user,
        "next": next_path,
        "notice": MUST_CHANGE if web_user.must_change_password else "",
        "errors": dict(items),
        "error_list": items,
    }
    return render(request, "change_password.html", context, 422 if invalid else 200)
