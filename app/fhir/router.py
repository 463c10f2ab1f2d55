"""FHIR R4 (SDC) endpoints: CapabilityStatement, Questionnaire read, QuestionnaireResponse create.

Every error of these routes, authentication included, is a FHIR ``OperationOutcome``
(``FhirRoute``); denied and failed requests are still audited like the rest of the API.
"""

import json
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from app.audit import denials
from app.deps import (
    ClinicClient,
    ScreeningWriter,
    TransactionDep,
    actor_of,
    audited,
    clock_of,
    keyring_of,
    request_id_of,
    ruleset_of,
    run_write,
)
from app.errors import AppError, ValidationFailed, request_problems
from app.fhir import response
from app.fhir import service as fhir_service

FHIR_JSON = fhir_service.FHIR_JSON
_OUTCOME_DOC = {"description": "An OperationOutcome.", "content": {FHIR_JSON: {}}}


def _fhir(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status, headers, media_type=FHIR_JSON)


class FhirRoute(APIRoute):
    """A route whose errors are OperationOutcomes (audited as the app's handlers audit them)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler: AppError and request validation errors → OperationOutcome."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                problems = request_problems(list(error.errors()))
                failure: AppError = ValidationFailed("The request is not valid.", errors=problems)
            except AppError as error:
                failure = error
            codes = [problem.code for problem in failure.errors]
            await denials.record(request, failure.status, failure.slug, codes)
            return _fhir(response.outcome(failure), failure.status, failure.headers)

        return handle


router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _catalogues(request: Request) -> dict[str, Any]:
    cached: dict[str, Any] | None = getattr(request.app.state, "fhir_catalogues", None)
    if cached is None:
        cached = fhir_service.load_catalogues(request.app.state.settings.rules_path)
        request.app.state.fhir_catalogues = cached
    return cached


@router.get("/metadata", summary="FHIR CapabilityStatement", responses={200: _OUTCOME_DOC})
def get_capability_statement(request: Request) -> Response:
    """What this endpoint supports: R4 JSON, Questionnaire read, QuestionnaireResponse create."""
    now = clock_of(request).now()
    return _fhir(fhir_service.capability_statement(base_url=_base_url(request), now=now))


@router.get(
    "/Questionnaire/{questionnaire_id}",
    summary="The questionnaire as a FHIR R4 (SDC) Questionnaire",
    responses={401: _OUTCOME_DOC, 404: _OUTCOME_DOC},
)
def get_fhir_questionnaire(
    request: Request,
    questionnaire_id: str,
    _client: ClinicClient,
    transaction: TransactionDep,
    version: Annotated[
        str | None, Query(max_length=64, description="The pack sha256 (or active version).")
    ] = None,
) -> Response:
    """The active questionnaire (or a stored version by sha256) with enableWhenExpression."""
    with transaction as session:
        ruleset = fhir_service.find_ruleset(
            session,
            active=ruleset_of(request),
            rulesets=request.app.state.rulesets,
            version=version,
        )
    return _fhir(
        fhir_service.export_questionnaire(
            ruleset,
            questionnaire_id=questionnaire_id,
            catalogues=_catalogues(request),
            base_url=_base_url(request),
        )
    )


@router.post(
    "/QuestionnaireResponse",
    status_code=201,
    summary="Submit a QuestionnaireResponse as a screening",
    openapi_extra=audited("screening.created", "screening"),
    responses={401: _OUTCOME_DOC, 403: _OUTCOME_DOC, 422: _OUTCOME_DOC},
)
async def create_questionnaire_response(
    request: Request,
    client: ScreeningWriter,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Validate, evaluate and store like POST /v1/screenings; 201 with Location and the result."""
    try:
        resource = json.loads(await request.body())
    except ValueError:
        raise response.malformed() from None
    clock = clock_of(request)
    store = partial(
        fhir_service.receive,
        ruleset=ruleset_of(request),
        keyring=keyring_of(request),
        clinic_id=client.clinic_id,
        actor=actor_of(client),
        resource=resource,
        idempotency_key=idempotency_key,
        now=clock.now(),
        as_of=clock.today(),
        request_id=request_id_of(request),
        base_url=_base_url(request),
    )
    received = await run_write(request, store)  # committed before the 201 is built
    if not received.is_replay:
        request.app.state.metrics.screenings.labels(received.decision).inc()
    headers = {"Location": f"/v1/screenings/{received.screening_id}"}
    return _fhir(
        received.body,
        201,
        headers | ({"Idempotent-Replayed": "true"} if received.is_replay else {}),
    )
