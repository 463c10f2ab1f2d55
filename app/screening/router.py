"""The screening API: evaluate, submit, read and list screenings; questionnaires; rule packs."""

import uuid
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import AwareDatetime

from app.activepack import ActiveRulesetDep, active_ruleset
from app.deps import (
    KeyRingDep,
    RequestIdDep,
    ScreeningReader,
    ScreeningWriter,
    StoredRulesetsDep,
    TransactionDep,
    actor_of,
    audited,
    clock_of,
    keyring_of,
    request_id_of,
    run_write,
    screening_writer,
)
from app.responses import (
    AUTH_ERRORS,
    INVALID,
    NOT_FOUND,
    json_response,
    problem_doc,
    problem_example,
)
from app.review import service as review_service
from app.screening import explain as screening_explain
from app.screening import listing
from app.screening import service as screening_service
from app.screening.schemas import (
    EvaluateCreate,
    EvaluationRead,
    ExplanationRead,
    QuestionnaireRead,
    ScreeningCreate,
    ScreeningPage,
    ScreeningRead,
)
from app.shortcut import Shortcut

router = APIRouter(prefix="/v1")


@router.post(
    "/evaluate",
    response_model=EvaluationRead,
    summary="Evaluate answers (nothing stored)",
    tags=["screenings"],
    responses=AUTH_ERRORS | INVALID,
)
async def evaluate_answers(
    body: EvaluateCreate, client: ScreeningWriter, request: Request
) -> Response:
    """Validate and evaluate answers as of today in the clinic's time zone; nothing is stored."""
    # `async`: this endpoint does no I/O and its CPU work takes microseconds, so it runs on
    # the event loop instead of paying a threadpool round trip; the rule pack and the clock
    # are read from the app without per-request dependencies (bench/README.md).
    evaluation = screening_service.evaluate_answers(
        await active_ruleset(request, client.clinic_id),
        questionnaire=body.questionnaire,
        answers=body.answers,
        as_of=clock_of(request).today(),
    )
    return json_response(evaluation.result)


@router.post(
    "/screenings",
    status_code=201,
    response_model=ScreeningRead,
    summary="Submit a screening",
    tags=["screenings"],
    openapi_extra=audited("screening.created", "screening"),
    responses=AUTH_ERRORS
    | INVALID
    | {
        400: problem_doc(
            "Malformed Idempotency-Key.",
            problem_example(
                400, "bad-request", "Idempotency-Key must be 1-255 printable ASCII characters."
            ),
        )
    },
)
async def create_screening(
    request: Request,
    body: ScreeningCreate,
    client: ScreeningWriter,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="A retry with the same key and body replays the first response (24 h).",
        ),
    ] = None,
) -> Response:
    """Evaluate and store answers for a subject; 201 with the stored screening."""
    # App state is read from the request, not through five more dependencies: FastAPI solves
    # every dependency on every request, on the event loop (bench/README.md).
    submission = screening_service.Submission(
        body.questionnaire, body.answers, body.subject.model_dump()
    )
    clock = clock_of(request)
    store = partial(
        screening_service.submit,
        ruleset=await active_ruleset(request, client.clinic_id),
        keyring=keyring_of(request),
        clinic_id=client.clinic_id,
        actor=actor_of(client),
        submission=submission,
        idempotency_key=idempotency_key,
        now=clock.now(),
        as_of=clock.today(),
        request_id=request_id_of(request),
    )
    created = await run_write(request, store)  # committed before the 201 is built
    if not created.is_replay:
        request.app.state.metrics.screenings.labels(created.body["decision"]).inc()
    headers = {"Location": f"/v1/screenings/{created.body['id']}"} | (
        {"Idempotent-Replayed": "true"} if created.is_replay else {}
    )
    return json_response(created.body, 201, headers)


@router.get(
    "/screenings/{screening_id}",
    response_model=ScreeningRead,
    summary="Get a screening",
    tags=["screenings"],
    responses=AUTH_ERRORS | NOT_FOUND,
    openapi_extra=audited("screening.read", "screening", path_param="screening_id"),
)
def get_screening(
    screening_id: uuid.UUID,
    client: ScreeningReader,
    transaction: TransactionDep,
    keyring: KeyRingDep,
    request_id: RequestIdDep,
) -> Response:
    """Return one of this clinic's screenings (404 for any other id); ETag for If-Match."""
    with transaction as session:
        body = screening_service.get(
            session,
            keyring=keyring,
            clinic_id=client.clinic_id,
            screening_id=screening_id,
            actor=actor_of(client),
            request_id=request_id,
        )
        etag = review_service.current_etag(
            session, clinic_id=client.clinic_id, screening_id=screening_id
        )
    return json_response(body, headers={"ETag": etag})


@router.get(
    "/screenings/{screening_id}/explain",
    response_model=ExplanationRead,
    summary="Explain a screening with the rule pack it was made with",
    tags=["screenings"],
    responses=AUTH_ERRORS | NOT_FOUND,
    openapi_extra=audited("screening.explained", "screening", path_param="screening_id"),
)
def explain_screening(
    screening_id: uuid.UUID,
    client: ScreeningReader,
    transaction: TransactionDep,
    keyring: KeyRingDep,
    rulesets: StoredRulesetsDep,
    request_id: RequestIdDep,
) -> Response:
    """Re-evaluate with the stored rule pack and as-of date; every rule's status and evidence."""
    with transaction as session:
        explanation = screening_explain.explain(
            session,
            keyring=keyring,
            rulesets=rulesets,
            clinic_id=client.clinic_id,
            screening_id=screening_id,
            actor=actor_of(client),
            request_id=request_id,
        )
    return json_response(explanation)


@router.get(
    "/screenings",
    response_model=ScreeningPage,
    summary="List screenings, newest first",
    tags=["screenings"],
    responses=AUTH_ERRORS | INVALID,
    openapi_extra=audited("screening.listed", "screening"),
)
def list_screenings(
    client: ScreeningReader,
    transaction: TransactionDep,
    keyring: KeyRingDep,
    request_id: RequestIdDep,
    decision: Annotated[
        Literal["candidate", "needs_review", "not_candidate"] | None,
        Query(description="Only this decision."),
    ] = None,
    reviewed: Annotated[
        bool | None, Query(description="true: signed off by a physician; false: not yet.")
    ] = None,
    created_after: Annotated[
        AwareDatetime | None, Query(description="RFC 3339 with offset; exclusive.")
    ] = None,
    created_before: Annotated[
        AwareDatetime | None, Query(description="RFC 3339 with offset; exclusive.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=listing.MAX_PAGE, description="Page size.")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200, description="next_cursor of the previous page; keep the same filters."
        ),
    ] = None,
) -> Response:
    """List this clinic's screenings, newest first, with keyset pagination."""
    filters = listing.ListFilter(decision, reviewed, created_after, created_before, limit, cursor)
    with transaction as session:
        page = listing.list_screenings(
            session,
            keyring=keyring,
            clinic_id=client.clinic_id,
            actor=actor_of(client),
            filters=filters,
            request_id=request_id,
        )
    return Response(page.to_json(), media_type="application/json")


@router.get(
    "/questionnaires/{questionnaire_id}",
    response_model=QuestionnaireRead,
    summary="Get a questionnaire",
    tags=["questionnaires"],
    responses=AUTH_ERRORS | NOT_FOUND,
)
def get_questionnaire(questionnaire_id: str, ruleset: ActiveRulesetDep) -> Response:
    """The form definition: groups and items in display order, types, options and conditions."""
    return json_response(
        screening_service.get_questionnaire(ruleset, questionnaire_id=questionnaire_id)
    )


def shortcuts() -> list[Shortcut]:
    """``POST /v1/evaluate`` and ``POST /v1/screenings`` past FastAPI (``app/shortcut.py``).

    Each calls the endpoint above with what FastAPI would have passed it.
    """
    routes = {
        (route.path, method): route
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    return [
        Shortcut(
            routes["/v1/evaluate", "POST"],
            EvaluateCreate,
            screening_writer,
            lambda request, body, client: evaluate_answers(body, client, request),
        ),
        Shortcut(
            routes["/v1/screenings", "POST"],
            ScreeningCreate,
            screening_writer,
            lambda request, body, client: create_screening(
                request, body, client, request.headers.get("Idempotency-Key")
            ),
        ),
    ]
