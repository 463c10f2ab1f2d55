"""FHIR R4 (SDC) endpoints: CapabilityStatement, Questionnaire read, QuestionnaireResponse create.

Every error of these routes, authentication included, is a FHIR ``OperationOutcome``
(``FhirRoute``); denied and failed requests are still audited like the rest of the API.
"""

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from app.apikey.auth import ClinicClient, ScreeningWriter, actor_of
from app.audit import denials
from app.audit.denials import marker as audited
from app.context import UnitDep, context_of, public_base_url, request_id_of
from app.errors import AppError, ValidationFailed, request_problems
from app.fhir import response
from app.fhir import service as fhir_service
from app.responses import INVALID
from app.rulepack import integrity as rulepack_integrity
from app.rulepack import translation as rulepack_translation
from app.rulepack.active import active_ruleset, active_ruleset_in

FHIR_JSON = fhir_service.FHIR_JSON


class FhirResponse(Response):
    """A FHIR resource as ``application/fhir+json`` (the routes' documented media type)."""

    media_type = FHIR_JSON


def _resource_doc(description: str, *resource_types: str) -> dict[str, Any]:
    """An OpenAPI response: a FHIR resource of one of ``resource_types``."""
    schema = {
        "type": "object",
        "properties": {"resourceType": {"enum": list(resource_types)}},
        "required": ["resourceType"],
    }
    return {"description": description, "content": {FHIR_JSON: {"schema": schema}}}


def _outcomes(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented errors of a route: each an OperationOutcome."""
    return {
        status: _resource_doc("An OperationOutcome.", "OperationOutcome") for status in statuses
    }


def _fhir(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return FhirResponse(content, status, headers)


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
                if isinstance(error, rulepack_integrity.RulePackIntegrityError):
                    await rulepack_integrity.record(request, error)  # as every other route
            codes = [problem.code for problem in failure.errors]
            await denials.record(request, failure.status, failure.slug, codes)
            return _fhir(response.outcome(failure), failure.status, failure.headers)

        return handle


router = APIRouter(
    prefix="/fhir", tags=["fhir"], route_class=FhirRoute, default_response_class=FhirResponse
)


def _base_url(request: Request) -> str:
    return public_base_url(request)


@dataclass(frozen=True, slots=True)
class _Catalogues:
    """The pack's translations by language, loaded on first use (an app component)."""

    by_language: dict[str, Any]


def _catalogues(request: Request) -> dict[str, Any]:
    context = context_of(request)
    return context.component(
        _Catalogues, lambda: _Catalogues(fhir_service.load_catalogues(context.settings.rules_path))
    ).by_language


@router.get(
    "/metadata",
    summary="FHIR CapabilityStatement",
    responses={200: _resource_doc("The CapabilityStatement.", "CapabilityStatement")},
)
def get_capability_statement(request: Request) -> Response:
    """What this endpoint supports: R4 JSON, Questionnaire read, QuestionnaireResponse create."""
    now = context_of(request).clock.now()
    return _fhir(fhir_service.capability_statement(base_url=_base_url(request), now=now))


@router.get(
    "/Questionnaire/{questionnaire_id}",
    summary="The questionnaire as a FHIR R4 (SDC) Questionnaire",
    responses={
        200: _resource_doc("The Questionnaire.", "Questionnaire"),
        **_outcomes(401, 403, 404, 422, 500),
    },
)
def get_fhir_questionnaire(
    request: Request,
    questionnaire_id: str,
    client: ClinicClient,
    unit: UnitDep,
    version: Annotated[
        str | None, Query(max_length=64, description="The pack sha256 (or active version).")
    ] = None,
) -> Response:
    """The active questionnaire (or a stored version by sha256) with enableWhenExpression."""
    with unit.session() as session:
        active = active_ruleset_in(request, session, client.clinic_id)  # the clinic's policy
        ruleset = fhir_service.find_ruleset(session, active=active, version=version)
        # The pack's own stored translations, else the default pack's (a translation shows
        # only while its English source is unchanged, as on the patient form).
        catalogues = rulepack_translation.load(session, sha256=ruleset.sha256)
    return _fhir(
        fhir_service.export_questionnaire(
            ruleset,
            questionnaire_id=questionnaire_id,
            catalogues=catalogues or _catalogues(request),
            base_url=_base_url(request),
        )
    )


@router.post(
    "/QuestionnaireResponse",
    status_code=201,
    summary="Submit a QuestionnaireResponse as a screening",
    openapi_extra=audited("screening.created", "screening")
    | {
        "requestBody": {
            "required": True,
            "content": {
                FHIR_JSON: {"schema": {"type": "object", "description": "A QuestionnaireResponse."}}
            },
        }
    },
    responses={
        201: _resource_doc("The response as stored and the result, as Parameters.", "Parameters"),
        **_outcomes(400, 401, 403, 409, 422, 500),
        413: INVALID[413],  # the body limit is the middleware's: a problem+json
    },
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
    context = context_of(request)
    clock = context.clock
    store = partial(
        fhir_service.receive,
        ruleset=await active_ruleset(request, client.clinic_id),  # the clinic's policy
        keyring=context.keyring,
        clinic_id=client.clinic_id,
        actor=actor_of(client),
        resource=resource,
        idempotency_key=idempotency_key,
        now=clock.now(),
        as_of=clock.today(),
        request_id=request_id_of(request),
        base_url=_base_url(request),
    )
    received = await context.unit.write(store)  # committed before the 201 is built
    if not received.is_replay:
        context.metrics.screenings.labels(received.decision).inc()
    headers = {"Location": f"/v1/screenings/{received.screening_id}"}
    return _fhir(
        received.body,
        201,
        headers | ({"Idempotent-Replayed": "true"} if received.is_replay else {}),
    )
