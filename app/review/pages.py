"""What each review page shows: queue, detail and sign-off outcomes, built without HTTP.

The HTML endpoints in ``ui.py`` parse the request, call one function here and render the
returned ``Page`` (a template, its context, a status code) or follow a ``Redirect``.
Functions take the caller's session and never commit.
"""

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from app.account.sessions import WebUser
from app.crypto import KeyRing
from app.engine import Ruleset
from app.errors import NotFound, ProblemItem, ValidationFailed
from app.review import detail, queue
from app.review import service as review_service
from app.review.schemas import SignOffForm
from app.screening import store

EMPTY = "Nothing left to sign off here: every screening in this view has been signed off."
_FIELDS = {"#/override_reason": "override_reason", "#/note": "note", "#/disposition": "disposition"}


@dataclass(frozen=True, slots=True)
class Page:
    """A template to render with its context and status code."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status_code: int = 200


@dataclass(frozen=True, slots=True)
class Redirect:
    """Where to send the browser next (303 See Other)."""

    location: str


def filters_of(
    ruleset: Ruleset, decision: str, rule: str, status: str, page: int = 1, search: str = ""
) -> queue.QueueFilter:
    """The queue filter of GET parameters or hidden form fields.

    Unknown values are ignored rather than rejected: a bookmark outlives a renamed rule.
    """
    return queue.QueueFilter(
        decision if decision in {"not_candidate", "needs_review"} else None,
        rule if rule in {r.id for r in ruleset.rules} else None,
        status if status in queue.STATUSES else "open",
        max(1, page),
        search.strip(),
    )


def query_of(filters: queue.QueueFilter, **extra: str) -> str:
    """The filter (without the page) and ``extra`` as a query string, to come back to."""
    items = [(k, v) for k, v in filters.query_items() if k != "page"] + list(extra.items())
    return urlencode(items)


def queue_page(
    session: Session,
    *,
    keyring: KeyRing,
    ruleset: Ruleset,
    web_user: WebUser,
    filters: queue.QueueFilter,
    now: datetime,
    is_done: bool = False,
    signed: str = "",
    request_id: str | None = None,
) -> Page:
    """The queue: exclusions first, then oldest first (the listing is audited).

    ``signed`` is the notice naming the screening just signed off (``signed_notice``).
    """
    found = queue.list_queue(
        session,
        keyring=keyring,
        clinic_id=web_user.principal.clinic_id,
        actor=web_user.principal.actor,
        filters=filters,
        request_id=request_id,
    )
    context = {
        "web_user": web_user,
        "page": found,
        "search": filters.search,
        "filters": filters,
        "now": now,
        "rules": ruleset.rules,
        "statuses": queue.STATUSES,
        "dispositions": review_service.DISPOSITION_LABELS,
        "query": query_of(filters),
        "notice": " ".join(filter(None, [signed, EMPTY if is_done else ""])),
    }
    return Page("queue.html", context)


def detail_page(
    session: Session,
    *,
    keyring: KeyRing,
    web_user: WebUser,
    screening_id: uuid.UUID,
    filters: queue.QueueFilter,
    request_id: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Page:
    """One screening with its evidence, answers, history and sign-off form; NotFound else.

    ``extra`` overrides the form state: ``values``, ``errors``, ``error_list``, ``stale``
    (the review that got there first) and ``signed`` (the screening just signed off, whose
    notice names it and, when it is another one, the screening now shown).
    """
    signed: uuid.UUID | None = extra.pop("signed", None)
    view = detail.build(
        session,
        keyring=keyring,
        clinic_id=web_user.principal.clinic_id,
        screening_id=screening_id,
        actor=web_user.principal.actor,
        request_id=request_id,
    )
    context = {
        "web_user": web_user,
        "view": view,
        "filters": filters,
        "query": query_of(filters),
        "override_reasons": review_service.OVERRIDE_REASONS,
        "dispositions": review_service.DISPOSITION_LABELS,
        "errors": {},
        "error_list": [],
        "values": {},
        "stale": None,
        "notice": "",
    } | extra
    if signed is not None:
        shown = "" if signed == view.screening_id else view.reference
        context["notice"] = signed_notice(session, keyring, web_user, signed, showing=shown)
    return Page("detail.html", context, status_code)


def signed_notice(
    session: Session, keyring: KeyRing, web_user: WebUser, screening_id: uuid.UUID, showing: str
) -> str:
    """The notice naming the screening just signed off (and the one now shown, if another).

    For example "MRN-1 signed off: Cleared for consultation. Now showing MRN-2.": it names
    the screening it is about, so it can never read as the next patient's. Empty when
    ``screening_id`` is not the clinic's or not signed off.
    """
    clinic_id = web_user.principal.clinic_id
    try:
        history = review_service.history(
            session, keyring=keyring, clinic_id=clinic_id, screening_id=screening_id
        )
    except NotFound:
        return ""
    if not history:
        return ""
    row = review_service.screening_row(session, clinic_id=clinic_id, screening_id=screening_id)
    subject = store.ScreeningContent.decrypt(keyring, row).subject
    reference = str(subject.get("reference", "")) if isinstance(subject, dict) else ""
    label = review_service.DISPOSITION_LABELS[history[0].disposition]
    notice = f"{reference or 'The screening'} signed off: {label}."
    return f"{notice} Now showing {showing}." if showing else notice


def sign_off(
    session: Session,
    *,
    keyring: KeyRing,
    ruleset: Ruleset,
    web_user: WebUser,
    screening_id: uuid.UUID,
    form: SignOffForm,
    now: datetime,
    request_id: str | None = None,
) -> Page | Redirect:
    """Record a sign-off from the detail form and say where to go next.

    Someone signed first (stale ETag): the detail page (409) naming them, with the form as
    it was sent. Invalid: the detail page (422) with every problem. Saved: the same screening
    again, or with ``then=next`` the next open one in the same filter (the queue when none).
    Raises Forbidden (not a physician) and NotFound (not the clinic's screening).
    """
    filters = filters_of(ruleset, form.decision, form.rule, form.status)
    values = {
        "disposition": form.disposition,
        "override_reason": form.override_reason,
        "note": form.note,
    }
    again = functools.partial(
        detail_page,
        session,
        keyring=keyring,
        web_user=web_user,
        screening_id=screening_id,
        filters=filters,
        request_id=request_id,
        values=values,
    )
    try:
        review_service.record(
            session,
            keyring=keyring,
            reviewer=web_user.principal,
            screening_id=screening_id,
            review=_review_input(form),
            if_match=form.etag or None,
            now=now,
            request_id=request_id,
        )
    except review_service.PreconditionFailed as stale:
        return again(status_code=409, stale=stale.latest)
    except (ValidationFailed, review_service.PreconditionRequired) as invalid:
        return again(status_code=422, **_error_context(invalid))
    return _after_sign_off(session, web_user, screening_id, filters, form.then == "next")


def _review_input(form: SignOffForm) -> review_service.ReviewInput:
    try:
        disposition = review_service.Disposition(form.disposition)
    except ValueError:
        raise ValidationFailed(
            "Choose a decision.",
            errors=[
                ProblemItem("disposition_required", "Choose a decision.", pointer="#/disposition")
            ],
        ) from None
    return review_service.ReviewInput(disposition, form.note, form.override_reason or None)


def _error_context(error: ValidationFailed | review_service.PreconditionRequired) -> dict[str, Any]:
    items = [(_FIELDS.get(e.pointer or "", "disposition"), e.message) for e in error.errors]
    if not items:
        items = [("disposition", error.detail)]
    return {"errors": dict(items), "error_list": items}


def _after_sign_off(
    session: Session,
    web_user: WebUser,
    screening_id: uuid.UUID,
    filters: queue.QueueFilter,
    is_next: bool,
) -> Redirect:
    following: uuid.UUID | None = screening_id
    if is_next:
        following = queue.next_open(
            session, clinic_id=web_user.principal.clinic_id, filters=filters, after=screening_id
        )
    signed = str(screening_id)
    if following is None:
        return Redirect(f"/review?{query_of(filters, done='true', signed=signed)}")
    return Redirect(f"/review/screenings/{following}?{query_of(filters, signed=signed)}")
