"""Web-user auth: browser sessions and personal tokens of physicians, and their dependencies."""

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.orm import Session

from app.account import service as account_service
from app.account import sessions
from app.account import tokens as account_tokens
from app.apikey import ratelimit
from app.apikey.auth import bearer
from app.audit import denials
from app.context import Clock, ClockDep, SessionDep, context_of, note_clinic
from app.errors import Forbidden, Unauthorized
from app.html import PasswordChangeRequired, SignInRequired

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def session_cookie(request: Request) -> tuple[str, bool]:
    """The session cookie's name and Secure flag (always HttpOnly, SameSite=Lax, Path=/).

    In production always ``__Host-session`` with Secure, whatever the request looks like
    (behind a TLS-terminating proxy it arrives as plain http, often to a loopback address).
    In dev and test the same, except plain http to a loopback address, where browsers may
    not send a Secure cookie back: there it is ``session`` without Secure.
    """
    if context_of(request).settings.is_prod:
        return ("__Host-session", True)
    is_plain_loopback = request.url.scheme == "http" and request.url.hostname in _LOOPBACK
    return ("session", False) if is_plain_loopback else ("__Host-session", True)


def is_same_origin(request: Request) -> bool:
    """Whether a form POST comes from one of our own pages (Sec-Fetch-Site, then Origin).

    Our origin is ``SCREENING_PUBLIC_BASE_URL``'s scheme and host when it is set (always in
    production: behind a proxy the ``Host`` header may name the upstream, and a caller
    controls it); only without the setting (dev, test) is it the request's ``Host``.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in {"same-origin", "none"}:
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # older browsers and non-browser clients: the CSRF token still applies
    sent = urlsplit(origin)
    public = context_of(request).settings.public_base_url
    if public is not None:
        ours = urlsplit(public)
        return (sent.scheme, sent.netloc) == (ours.scheme, ours.netloc)
    return sent.netloc == request.headers.get("host", "")


def is_valid_form(request: Request, web_user: sessions.WebUser, csrf_token: str | None) -> bool:
    """Same origin and this session's CSRF token: required on every signed-in form POST."""
    return is_same_origin(request) and sessions.is_valid_csrf(web_user, csrf_token)


def _web_user(request: Request, session: Session, clock: Clock) -> sessions.WebUser | None:
    token = request.cookies.get(session_cookie(request)[0])
    return None if token is None else sessions.resume(session, token=token, now=clock.now())


def get_signed_in_user(request: Request, session: SessionDep, clock: ClockDep) -> sessions.WebUser:
    """The signed-in user, even one who must still change a one-time password.

    Only for the change-password page and sign-out; SignInRequired without a session.
    """
    web_user = _web_user(request, session, clock)
    if web_user is None:
        had_session = session_cookie(request)[0] in request.cookies
        raise SignInRequired(had_session=had_session)
    return web_user


async def get_web_user(
    web_user: Annotated[sessions.WebUser, Depends(get_signed_in_user)],
) -> sessions.WebUser:
    """The signed-in user of a review page; SignInRequired (→ sign-in page) otherwise.

    PasswordChangeRequired (→ change-password page) while a one-time password is in use.
    """
    if web_user.must_change_password:
        raise PasswordChangeRequired()
    return web_user


def _session_principal(
    request: Request, session: Session, clock: Clock
) -> account_service.Principal:
    """The physician of a browser session (with ``X-CSRF-Token`` on writes)."""
    web_user = _web_user(request, session, clock)
    if web_user is None:
        raise Unauthorized("Sign in, or send a personal token as a Bearer token.")
    denials.remember(request, web_user.principal)
    if web_user.must_change_password:
        raise Forbidden("Change your one-time password on the review pages first.")
    if request.method not in {"GET", "HEAD"} and not sessions.is_valid_csrf(
        web_user, request.headers.get("X-CSRF-Token")
    ):
        raise Forbidden("The X-CSRF-Token header is missing or wrong.")
    return web_user.principal


def get_reviewer(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> account_service.Principal:
    """A physician, by personal token or by session (with ``X-CSRF-Token`` on writes).

    401 without either; 429 over the user's rate limit (``ratelimit``); 403 for a clinic
    intake key, a bad CSRF token or a non-physician.
    """
    if credentials is not None:
        principal = account_tokens.token_principal(
            session, token=credentials.credentials, now=clock.now()
        )
        if principal is None:
            raise Unauthorized("The token is unknown, revoked or expired.")
        denials.remember(request, principal)
    else:
        principal = _session_principal(request, session, clock)
    note_clinic(request, principal.clinic_id)
    ratelimit.check(request, ("user", principal.user_id))
    if not principal.is_physician:
        raise Forbidden("Only a physician can sign off screenings.")
    return principal


WebUserDep = Annotated[sessions.WebUser, Depends(get_web_user)]
SignedInDep = Annotated[sessions.WebUser, Depends(get_signed_in_user)]
Reviewer = Annotated[account_service.Principal, Depends(get_reviewer)]
