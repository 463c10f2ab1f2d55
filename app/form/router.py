"""The patient form's HTML pages: start, questions, check answers, submit, confirmation.

Every page is server-rendered and works without JavaScript or cookies: the invitation token
in the path is the only credential, and the answers in progress live (encrypted) on the
invitation. Pages send a per-clinic ``frame-ancestors`` CSP, ``Referrer-Policy: no-referrer``
and ``Cache-Control: no-store``, and load nothing from another origin.
"""

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import RedirectResponse

from app.context import ClockDep, KeyRingDep, RequestIdDep, SessionDep, context_of, request_id_of
from app.engine import Ruleset
from app.errors import ValidationFailed
from app.form import fields, pages, reading, views
from app.form import service as form_service
from app.form.pages import Draft, State
from app.form.render import render, security_headers
from app.form.text import Text, pick_language
from app.rulepack import active
from app.rulepack import integrity as rulepack_integrity
from app.screening import store

FORM_PREFIX = form_service.FORM_PREFIX
router = APIRouter(prefix=FORM_PREFIX, include_in_schema=False)
STATIC = Path(__file__).with_name("static")
STATIC_TYPES = {
    "form.css": "text/css",
    "frame.js": "text/javascript",
    "checkboxes.js": "text/javascript",
    "embed.js": "text/javascript",
}
LINK = "/{clinic_id}/{token}"
_STATUS = {"unknown": 404, "expired": 410, "used": 410}


@dataclass(slots=True)
class Visit:
    """An open invitation, its clinic, the page language and the URLs of this link."""

    invitation: Any
    clinic: Any
    text: Text
    base: str
    ancestors: str
    ruleset: Ruleset  # the pack the invitation was created under (issue 13)
    session: Any  # the request's session: every page shown is audited (form.viewed)

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        """Render a page of this visit with the clinic's name, phone and framing policy."""
        form_service.record_view(
            self.session,
            invitation=self.invitation,
            page=template.removesuffix(".html"),
            request_id=request_id_of(request),
        )
        return render(request, template, self.text, self.clinic, status, self.ancestors, **context)

    def redirect(self, path: str) -> Response:
        """303 to another page of this link (after a POST, or to the right page)."""
        headers = security_headers(self.clinic.form_origins, self.ancestors)
        return RedirectResponse(self.base + path, 303, headers)


class LinkPage(Exception):
    """A link that cannot open the form: rendered as a friendly page, never a stack trace."""

    def __init__(
        self, problem: form_service.LinkUnavailable, text: Text, reference: str = ""
    ) -> None:
        super().__init__(problem.problem.value)
        self.problem, self.text, self.reference = problem, text, reference


async def link_page(request: Request, exc: Exception) -> Response:
    """Render the friendly page of an unknown, expired or used link."""
    assert isinstance(exc, LinkPage)
    problem = exc.problem.problem.value
    ancestors = context_of(request).settings.form_frame_ancestors
    # Only a link that really opened the form (now used) names its clinic: an unknown or
    # expired one shows neither its name, phone nor framing origins (a leaked old link, or a
    # guess at a clinic id, learns nothing), and gets the default frame-ancestors.
    clinic = exc.problem.clinic if problem == "used" else None
    return render(
        request, "problem.html", exc.text, clinic, _STATUS[problem], ancestors,
        problem=problem, reference=exc.reference, title=exc.text(f"link.{problem}.title"),
    )  # fmt: skip


async def pack_unavailable_page(request: Request, exc: Exception) -> Response:
    """Audit the integrity failure; tell the patient the questions are not available."""
    assert isinstance(exc, form_service.PackUnavailable)
    await rulepack_integrity.record(request, exc.error)
    ancestors = context_of(request).settings.form_frame_ancestors
    return render(
        request, "problem.html", exc.text, exc.clinic, 500, ancestors,
        problem="unavailable", reference="", title=exc.text("link.unavailable.title"),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Catalogues:
    """The form's message catalogues by pack and language, loaded on first use (a component).

    Keyed by the pack's sha256; "" is the server's own pack, whose catalogues come from disk.
    """

    by_pack: dict[str, dict[str, Any]]


def _catalogues(request: Request, session: Any = None, sha256: str = "") -> dict[str, Any]:
    """The translations of a pack: the server's own pack's from disk, others' as stored."""
    context = context_of(request)
    if context.ruleset is not None and sha256 == context.ruleset.sha256:
        sha256 = ""
    cache = context.component(_Catalogues, lambda: _Catalogues({})).by_pack
    cached = cache.get(sha256)
    if cached is None:
        rules_path = context.settings.rules_path
        if sha256 and session is not None:
            cached, is_own = form_service.pack_catalogues(
                session, sha256=sha256, fallback_dir=rules_path
            )
        else:
            cached, is_own = form_service.load_catalogues(rules_path), True
        if is_own:
            cache[sha256] = cached
    return cached


def _visit(*, allow_used: bool) -> Any:
    def visit(
        request: Request,
        clinic_id: str,
        token: str,
        session: SessionDep,
        clock: ClockDep,
        lang: Annotated[str | None, Query(max_length=5)] = None,
    ) -> Visit:
        catalogues = _catalogues(request)
        accept = request.headers.get("accept-language", "")
        try:
            invitation, clinic = form_service.open_invitation(
                session, clinic_id=clinic_id, token=token, now=clock.now(), allow_used=allow_used
            )
        except form_service.LinkUnavailable as problem:
            language = pick_language(lang, "", accept)
            reference = store.reference_number(problem.screening_id) if problem.screening_id else ""
            raise LinkPage(problem, Text(language, catalogues.get(language)), reference) from None
        language = pick_language(lang, invitation.language, accept)
        if lang == language:
            form_service.set_language(session, invitation=invitation, language=language)
        context = context_of(request)
        try:
            ruleset = form_service.pinned_ruleset(
                session, invitation=invitation, rulesets=active.stored_rulesets(context),
                default=context.loaded_ruleset(),
            )  # fmt: skip
        except rulepack_integrity.RulePackIntegrityError as error:
            raise form_service.PackUnavailable(
                error, Text(language, catalogues.get(language)), clinic
            ) from None
        catalogues = _catalogues(request, session, ruleset.sha256)
        text = Text(language, catalogues.get(language))
        ancestors = context.settings.form_frame_ancestors
        base = f"{FORM_PREFIX}/{clinic_id}/{token}"
        return Visit(invitation, clinic, text, base, ancestors, ruleset, session)

    return visit


OpenVisit = Annotated[Visit, Depends(_visit(allow_used=False))]
AnyVisit = Annotated[Visit, Depends(_visit(allow_used=True))]


async def form_data(request: Request) -> dict[str, list[str]]:
    """The submitted form fields (text values only), each with all of its values."""
    form = await request.form()
    return {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}


FormData = Annotated[dict[str, list[str]], Depends(form_data)]


@dataclass(frozen=True, slots=True)
class FormState:
    """The pages, the draft (without answers that no longer apply) and every item's state."""

    pages: tuple[pages.Page, ...]
    draft: Draft
    state: State


@functools.lru_cache(maxsize=4)
def _pages(ruleset: Ruleset) -> tuple[pages.Page, ...]:
    return pages.build_pages(ruleset)


def form_state(visit: OpenVisit, keyring: KeyRingDep, clock: ClockDep) -> FormState:
    """Load the invitation's draft and work out which questions apply (its pinned pack)."""
    ruleset = visit.ruleset
    draft = form_service.load_draft(keyring, visit.invitation)
    draft, state = pages.prune(ruleset, draft, as_of=clock.today())
    return FormState(_pages(ruleset), draft, state)


StateDep = Annotated[FormState, Depends(form_state)]


@router.get("/static/{name}")
def get_static(name: str) -> Response:
    """The form's own stylesheet and scripts (nothing is loaded from another origin)."""
    if name not in STATIC_TYPES:
        return Response("Not found", 404, media_type="text/plain")
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response((STATIC / name).read_bytes(), 200, headers, media_type=STATIC_TYPES[name])


def _resume_path(form: FormState) -> str:
    unfinished = pages.first_unfinished(form.pages, form.draft, form.state)
    return f"/q/{unfinished.id}" if unfinished is not None else "/check"


@router.get(LINK, name="form_start")
def show_start(request: Request, visit: OpenVisit, form: StateDep) -> Response:
    """The start page: who is asking, why, how long it takes, who reads the answers."""
    expires_on = views.format_date(visit.invitation.expires_at.date(), visit.text.language)
    return visit.render(
        request, "start.html", title=visit.text("start.title"), expires_on=expires_on,
        start_href=visit.base + _resume_path(form), has_progress=bool(form.draft.seen),
    )  # fmt: skip


def _question(
    request: Request, visit: Visit, form: FormState, page: pages.Page, *, is_change: bool,
    raw: dict[str, Any] | None = None, errors: list[fields.FieldError] | None = None,
    check: str | None = None,
) -> Response:  # fmt: skip
    view = views.question_page(page, form.state, form.draft, visit.text, raw=raw, errors=errors)
    previous = pages.previous_page(form.pages, page, form.state)
    back = "/check" if is_change else (f"/q/{previous.id}" if previous else "")
    number, total = pages.progress(form.pages, page, form.state)
    return visit.render(
        request, "question.html", title=view.title, view=view, summary=view.summary,
        back_href=visit.base + back, action=f"{visit.base}/q/{page.id}", is_change=is_change,
        step_number=number, step_total=total, check=check,
        check_message=reading.problem(check) if check else "",
    )  # fmt: skip


def _applicable(form: FormState, page_id: str) -> pages.Page | None:
    page = pages.page_by_id(form.pages, page_id)
    return page if page is not None and pages.shown_items(page, form.state) else None


@router.get(LINK + "/q/{page_id}")
def show_question(
    request: Request, page_id: str, visit: OpenVisit, form: StateDep, change: bool = False
) -> Response:
    """A question page, filled in with the answers saved so far."""
    page = _applicable(form, page_id)
    if page is None:
        return visit.redirect(_resume_path(form))
    return _question(request, visit, form, page, is_change=change)


@router.post(LINK + "/q/{page_id}")
def save_question(
    request: Request, page_id: str, visit: OpenVisit, form: StateDep, data: FormData,
    session: SessionDep, keyring: KeyRingDep, clock: ClockDep,
) -> Response:  # fmt: skip
    """Validate and save a page; show it again with errors, or go to the next question."""
    ruleset = visit.ruleset
    page = _applicable(form, page_id)
    if page is None:
        return visit.redirect(_resume_path(form))
    shown = pages.shown_items(page, form.state)
    parsed = fields.parse_page(shown, data)
    draft, errors = pages.apply_page(ruleset, form.draft, shown, parsed, as_of=clock.today())
    if errors:
        return _question(
            request, visit, form, page, is_change="change" in data, raw=parsed.raw, errors=errors
        )
    check = reading.unusual(shown, draft.answers)
    if check and check != draft.confirmed_reading and data.get(reading.CONFIRM_FIELD) != [check]:
        return _question(
            request, visit, form, page, is_change="change" in data, raw=parsed.raw, check=check
        )
    if fields.reading_items(shown):  # the page holds the reading: keep what was confirmed
        draft = dataclasses.replace(draft, confirmed_reading=check)
    request_id = request_id_of(request)
    invitation = visit.invitation
    form_service.save_draft(
        session, keyring=keyring, invitation=invitation, draft=draft, request_id=request_id
    )
    state = pages.item_states(ruleset, draft.answers, as_of=clock.today())
    after = FormState(form.pages, draft, state)
    following = None if "change" in data else pages.next_page(form.pages, page, state)
    return visit.redirect(f"/q/{following.id}" if following else _resume_path(after))


@router.get(LINK + "/check")
def show_check(request: Request, visit: OpenVisit, form: StateDep) -> Response:
    """Check your answers: every answer with a Change link, then send."""
    if (resume := _resume_path(form)) != "/check":
        return visit.redirect(resume)
    last = pages.previous_page(form.pages, None, form.state)
    sections = views.answer_sections(form.pages, form.state, form.draft, visit.text, visit.base)
    return visit.render(
        request, "check.html", title=visit.text("check.title"), sections=sections,
        back_href=visit.base + (f"/q/{last.id}" if last else ""), action=f"{visit.base}/submit",
    )  # fmt: skip


@router.post(LINK + "/submit")
def submit_answers(
    request: Request, visit: OpenVisit, form: StateDep, session: SessionDep,
    keyring: KeyRingDep, clock: ClockDep, request_id: RequestIdDep,
) -> Response:  # fmt: skip
    """Store the screening (the same service as the API, source "form"), then confirm."""
    if _resume_path(form) != "/check":
        return visit.redirect(_resume_path(form))
    try:
        form_service.submit(
            session, ruleset=visit.ruleset, keyring=keyring, invitation=visit.invitation,
            clinic=visit.clinic, answers=form.draft.answers, now=clock.now(),
            as_of=clock.today(), request_id=request_id,
            confirmed_reading=form.draft.confirmed_reading,
        )  # fmt: skip
    except ValidationFailed:
        return visit.redirect("/check")
    except form_service.LinkUnavailable as problem:
        raise LinkPage(problem, visit.text) from None
    return visit.redirect("/done")


@router.get(LINK + "/done")
def show_done(request: Request, visit: AnyVisit) -> Response:
    """The confirmation: a reference number and what happens next, never the decision."""
    screening_id = visit.invitation.screening_id
    if screening_id is None:
        return visit.redirect("")
    return visit.render(
        request, "done.html", title=visit.text("done.title"),
        reference=store.reference_number(screening_id),
    )  # fmt: skip


def install(app: FastAPI) -> None:
    """Mount the form's pages and its friendly page for unusable links on ``app``."""
    app.include_router(router)
    app.add_exception_handler(LinkPage, link_page)
    app.add_exception_handler(form_service.PackUnavailable, pack_unavailable_page)
