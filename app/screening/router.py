"""The screening API: evaluate, submit, read and list screenings; questionnaires; rule packs."""

import uuid
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel

from app.apikey import service as apikey_service
from app.apikey.auth import ReviewReader, ScreeningReader, actor_of, authenticate
from app.audit.denials import marker as audited
from app.context import KeyRingDep, RequestIdDep, UnitDep, context_of, request_id_of
from app.jsonbody import openapi_body, read_json
from app.responses import (
    AUTH_ERRORS,
    INVALID,
    NOT_FOUND,
    RULE_PACK_INTEGRITY,
    UNPARSABLE,
    model_response,
    problem_doc,
    problem_example,
)
from app.rulepack.active import ActiveRulesetDep, active_ruleset
from app.screening import explain as screening_explain
from app.screening import listing, store
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

router = APIRouter(prefix="/v1")


# The hot routes (POST /v1/evaluate and /v1/screenings) take the Request and leave FastAPI
# nothing to solve: each dependency FastAPI solves costs on every request (bench/README.md).
# They authenticate and parse their body themselves, with the same errors as the other routes
# (app/jsonbody.py); their OpenAPI request body, parameters and security come from here.
_BEARER_SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}]
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retry with the same key and body replays the first response (24 h).",
    "schema": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": "A retry with the same key and body replays the first response (24 h).",
        "title": "Idempotency-Key",
    },
}
BODY_MODELS: list[type[BaseModel]] = [EvaluateCreate, ScreeningCreate]
"""The hot routes' body models: their schemas are components of the OpenAPI document."""


@router.post(
    "/evaluate",
    response_model=EvaluationRead,
    summary="Evaluate answers (nothing stored)",
    tags=["screenings"],
    responses=AUTH_ERRORS | INVALID | UNPARSABLE | RULE_PACK_INTEGRITY,
    openapi_extra={"requestBody": openapi_body(EvaluateCreate), "security": _BEARER_SECURITY},
)
async def evaluate_answers(request: Request) -> Response:
    """Validate and evaluate answers as of today in the clinic's time zone; nothing is stored."""
    # `async`: no I/O, and the CPU work takes microseconds: no threadpool round trip.
    parsed = await read_json(request, EvaluateCreate)
    client = await authenticate(request, apikey_service.SCREENINGS_WRITE)
    body, context = parsed.value(), context_of(request)
    evaluation = screening_service.evaluate_answers(
        await active_ruleset(request, client.clinic_id),
        questionnaire=body.questionnaire,
        answers=body.answers,
        as_of=context.clock.today(),
    )
    return model_response(EvaluationRead, evaluation.result)


@router.post(
    "/screenings",
    status_code=201,
    response_model=ScreeningRead,
    summary="Submit a screening",
    tags=["screenings"],
    openapi_extra=audited("screening.created", "screening")
    | {
        "requestBody": openapi_body(ScreeningCreate),
        "parameters": [_IDEMPOTENCY_KEY],
        "security": _BEARER_SECURITY,
    },
    responses=AUTH_ERRORS
    | INVALID
    | RULE_PACK_INTEGRITY
    | {
        400: problem_doc(
            "Malformed Idempotency-Key, or a body that cannot be parsed (invalid UTF-8, "
            "nested too deeply).",
            problem_example(
                400, "bad-request", "Idempotency-Key must be 1-255 printable ASCII characters."
            ),
        )
    },
)
async def create_screening(request: Request) -> Response:
    """Evaluate and store answers for a subject; 201 with the stored screening."""
    parsed = await read_json(request, ScreeningCreate)
    client = await authenticate(request, apikey_service.SCREENINGS_WRITE)
    body, context = parsed.value(), context_of(request)
    store_it = partial(
        screening_service.submit,
        ruleset=await active_ruleset(request, client.clinic_id),
        keyring=context.keyring,
        clinic_id=client.clinic_id,
        actor=actor_of(client),
        submission=screening_service.Submission(
            body.questionnaire, body.answers, body.subject.model_dump()
        ),
        idempotency_key=request.headers.get("Idempotency-Key"),
        now=context.clock.now(),
        as_of=context.clock.today(),
        request_id=request_id_of(request),
    )
    created = await context.unit.write(store_it)  # committed before the 201 is built
    if not created.is_replay:
        context.metrics.screenings.labels(created.body["decision"]).inc()
    headers = {"Location": f"/v1/screenings/{created.body['id']}"} | (
        {"Idempotent-Replayed": "true"} if created.is_replay else {}
    )
    return model_response(ScreeningRead, created.body, 201, headers)


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
    client: ReviewReader,
    unit: UnitDep,
    keyring: KeyRingDep,
    request_id: RequestIdDep,
) -> Response:
    """Return one of this clinic's screenings (404 for any other id); ETag for If-Match."""
    with unit.session() as session:
        body = screening_service.get(
            session,
            keyring=keyring,
            clinic_id=client.clinic_id,
            screening_id=screening_id,
            actor=actor_of(client),
            request_id=request_id,
        )
        etag = store.current_etag(session, clinic_id=client.clinic_id, screening_id=screening_id)
    return model_response(ScreeningRead, body, headers={"ETag": etag})


@router.get(
    "/screenings/{screening_id}/explain",
    response_model=ExplanationRead,
    summary="Explain a screening with the rule pack it was made with",
    tags=["screenings"],
    responses=AUTH_ERRORS | NOT_FOUND | RULE_PACK_INTEGRITY,
    openapi_extra=audited("screening.explained", "screening", path_param="screening_id"),
)
def explain_screening(
    screening_id: uuid.UUID,
    client: ReviewReader,
    unit: UnitDep,
    keyring: KeyRingDep,
    request_id: RequestIdDep,
) -> Response:
    """Re-evaluate with the stored rule pack and as-of date; every rule's status and evidence."""
    with unit.session() as session:
        explanation = screening_explain.explain(
            session,
            keyring=keyring,
            clinic_id=client.clinic_id,
            screening_id=screening_id,
            actor=actor_of(client),
            request_id=request_id,
        )
    return model_response(ExplanationRead, explanation)


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
    unit: UnitDep,
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
    with unit.session() as session:
        page = listing.list_screenings(
            session,
            keyring=keyring,
            clinic_id=client.clinic_id,
            actor=actor_of(client),
            filters=filters,
            request_id=request_id,
        )
    return model_response(ScreeningPage, {"items": page.items, "next_cursor": page.next_cursor})


@router.get(
    "/questionnaires/{questionnaire_id}",
    response_model=QuestionnaireRead,
    summary="Get a questionnaire",
    tags=["questionnaires"],
    responses=AUTH_ERRORS | NOT_FOUND | RULE_PACK_INTEGRITY,
)
def get_questionnaire(questionnaire_id: str, ruleset: ActiveRulesetDep) -> Response:
    """The form definition: groups and items in display order, types, options and conditions."""
    return model_response(
        QuestionnaireRead,
        screening_service.get_questionnaire(ruleset, questionnaire_id=questionnaire_id),
    )
