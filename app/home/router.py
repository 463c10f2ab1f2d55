"""`GET /`: a small HTML page for a newcomer; `/.well-known/security.txt` (RFC 9116)."""

from datetime import UTC, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from app.context import context_of, public_base_url
from app.html import render

router = APIRouter(include_in_schema=False)
SECURITY_TXT = "/.well-known/security.txt"
# RFC 9116 asks for an Expires under a year away; the file is built from the live settings,
# so it is always current, and a copy saved by a scanner goes stale after this.
SECURITY_TXT_LIFETIME = timedelta(days=90)
LANGUAGES = "en, es"  # the patient form's languages; reports in English are best


@router.get("/")
def home(request: Request) -> Response:
    """What the service is, with links to the API docs, the review pages and the form."""
    docs_on = context_of(request).settings.are_docs_on  # no link to a 404 in production
    return render(request, "home.html", {"web_user": None, "docs_on": docs_on})


@router.get(SECURITY_TXT)
def security_txt(request: Request) -> Response:
    """How to report a vulnerability: ``SCREENING_SECURITY_CONTACT``; 404 when none is set.

    Without a contact there is nothing true to say (Contact is required by RFC 9116), so the
    file does not exist rather than point reporters nowhere.
    """
    context = context_of(request)
    contact = context.settings.security_contact
    if contact is None:
        return PlainTextResponse("Not found\n", status_code=404)
    expires = (context.clock.now() + SECURITY_TXT_LIFETIME).astimezone(UTC)
    lines = [
        f"Contact: {contact}",
        f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"Preferred-Languages: {LANGUAGES}",
    ]
    if context.settings.public_base_url is not None:
        lines.append(f"Canonical: {public_base_url(request)}{SECURITY_TXT}")
    return PlainTextResponse("\n".join(lines) + "\n")
