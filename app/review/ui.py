"""Review pages: the queue, a screening's detail, and the sign-off form (no JavaScript).

Each endpoint parses the request, calls one builder in ``pages.py`` and renders its result.
Errors (403, 404, 422, 500) become HTML pages through ``app.html``.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.account.auth import WebUserDep, is_valid_form
from app.context import ClockDep, KeyRingDep, RequestIdDep, SessionDep
from app.html import forbidden, render
from app.review import pages
from app.review.schemas import SignOffForm
from app.rulepack.active import active_ruleset_in

router = APIRouter(prefix="/review", include_in_schema=False)
FilterQuery = Annotated[str, Query(max_length=100)]
PageQuery = Annotated[int, Query(ge=1, le=10_000)]


def _respond(request: Request, outcome: pages.Page | pages.Redirect) -> Response:
    if isinstance(outcome, pages.Redirect):
        return RedirectResponse(outcome.location, status_code=303)
    return render(request, outcome.template, outcome.context, status_code=outcome.status_code)


@router.get("")
def review_queue(
    request: Request,
    web_user: WebUserDep,
    session: SessionDep,
    keyring: KeyRingDep,
    clock: ClockDep,
    request_id: RequestIdDep,
    decision: FilterQuery = "",
    rule: FilterQuery = "",
    status: FilterQuery = "open",
    page: PageQuery = 1,
    done: bool = False,
    signed: uuid.UUID | None = None,
    q: FilterQuery = "",
) -> Response:
    """The review queue: exclusions first, then oldest first; filters and search as GET forms."""
    ruleset = active_ruleset_in(request, session, web_user.principal.clinic_id)  # its rule filter
    filters = pages.filters_of(ruleset, decision, rule, status, page, q)
    notice = pages.signed_notice(session, keyring, web_user, signed, showing="") if signed else ""
    outcome = pages.queue_page(
        session,
        keyring=keyring,
        ruleset=ruleset,
        web_user=web_user,
        filters=filters,
        now=clock.now(),
        is_done=done,
        signed=notice,
        request_id=request_id,
    )
    return _respond(request, outcome)


@router.get("/screenings/{screening_id}")
def review_detail(
    request: Request,
    screening_id: uuid.UUID,
    web_user: WebUserDep,
    session: SessionDep,
    keyring: KeyRingDep,
    request_id: RequestIdDep,
    decision: FilterQuery = "",
    rule: FilterQuery = "",
    status: FilterQuery = "open",
    q: FilterQuery = "",
    signed: uuid.UUID | None = None,
) -> Response:
    """One screening: flags with evidence, every answer, the review history, the sign-off form."""
    outcome = pages.detail_page(
        session,
        keyring=keyring,
        web_user=web_user,
        screening_id=screening_id,
        filters=pages.filters_of(
            active_ruleset_in(request, session, web_user.principal.clinic_id),
            decision,
            rule,
            status,
            search=q,
        ),
        request_id=request_id,
        signed=signed,
    )
    return _respond(request, outcome)


@router.post("/screenings/{screening_id}/sign-off")
def sign_off(
    request: Request,
    screening_id: uuid.UUID,
    form: Annotated[SignOffForm, Form()],
    web_user: WebUserDep,
    session: SessionDep,
    keyring: KeyRingDep,
    clock: ClockDep,
    request_id: RequestIdDep,
) -> Response:
    """Record the sign-off; on a stale form show who signed first; "open next" moves on."""
    if not is_valid_form(request, web_user, form.csrf_token):
        return forbidden(request)
    outcome = pages.sign_off(
        session,
        keyring=keyring,
        ruleset=active_ruleset_in(request, session, web_user.principal.clinic_id),
        web_user=web_user,
        screening_id=screening_id,
        form=form,
        now=clock.now(),
        request_id=request_id,
    )
    return _respond(request, outcome)
