"""CDS Hooks 2.0 endpoints: discovery, the two services, and their feedback.

Calls authenticate with the EHR's JWT (``app/cds/auth.py``); a missing, bad or expired JWT is
401, and every call, refused ones included, is an audit event.
"""

from typing import Any

from fastapi import APIRouter, Request, Response

from app.audit.denials import marker as audited
from app.cds import auth as cds_auth
from app.cds import service as cds_service
from app.cds.schemas import CardsRead, DiscoveryRead, FeedbackRequest, HookRequest
from app.context import UnitDep, context_of, public_base_url, request_id_of
from app.responses import (
    INVALID,
    NOT_FOUND,
    RULE_PACK_INTEGRITY,
    model_response,
    problem_doc,
    problem_example,
)
from app.rulepack.active import active_ruleset_in

router = APIRouter(prefix="/cds-services", tags=["cds-hooks"])
_UNAUTHORIZED = {
    401: problem_doc(
        "Missing, malformed, expired or unverifiable JWT, or an unknown issuer.",
        problem_example(401, "unauthorized", "The CDS client's JWT is not valid: expired."),
    )
}


def _base_url(request: Request) -> str:
    return public_base_url(request)


def _jwks(request: Request) -> cds_auth.JwksCache:
    return context_of(request).component(cds_auth.JwksCache, cds_auth.JwksCache)


def _credentials(request: Request, service_id: str) -> dict[str, Any]:
    """What ``cds_auth.authenticate`` checks: the header, the audiences, the time, the keys."""
    service_url = f"{_base_url(request)}/cds-services/{service_id}"
    # The request's own URL comes from its Host header: accepted only without a public URL.
    is_configured = context_of(request).settings.public_base_url is not None
    own_url = () if is_configured else (str(request.url).split("?", 1)[0],)
    return {
        "authorization": request.headers.get("Authorization"),
        "audiences": (service_url, *own_url),
        "now": context_of(request).clock.now(),
        "jwks": _jwks(request),
    }


@router.get("", response_model=DiscoveryRead, summary="CDS Hooks discovery")
def discover_cds_services(request: Request) -> Response:
    """The CDS services offered: patient-view and appointment-book."""
    questionnaire_id = context_of(request).loaded_ruleset().questionnaire.id
    return model_response(
        DiscoveryRead,
        cds_service.discovery(base_url=_base_url(request), questionnaire_id=questionnaire_id),
    )


@router.post(
    "/{service_id}",
    response_model=CardsRead,
    summary="Call a CDS service",
    openapi_extra=audited("cds.advised", "cds_card"),
    responses=_UNAUTHORIZED | NOT_FOUND | INVALID | RULE_PACK_INTEGRITY,
)
def call_cds_service(
    request: Request, service_id: str, hook: HookRequest, unit: UnitDep
) -> Response:
    """One card: critical (contraindication), warning (needs review, unknown), info (candidate)."""
    context = context_of(request)
    with unit.session() as session:
        caller = cds_auth.authenticate(session, **_credentials(request, service_id))
        advice = cds_service.Advice(
            active_ruleset_in(request, session, caller.clinic_id),  # the clinic's policy
            context.keyring,
            _base_url(request),
            context.clock.today(),
            request_id_of(request),
        )
        cards = cds_service.advise(
            session, caller=caller, service_id=service_id, hook=hook, advice=advice
        )
    return model_response(CardsRead, cards)


@router.post(
    "/{service_id}/feedback",
    response_class=Response,
    summary="Feedback on a card: accepted or overridden",
    openapi_extra=audited("cds.feedback_recorded", "cds_card"),
    responses=_UNAUTHORIZED | NOT_FOUND | INVALID,
)
def record_cds_feedback(
    request: Request, service_id: str, feedback: FeedbackRequest, unit: UnitDep
) -> Response:
    """Record what the clinician did with each card (a linked physician's override: a review)."""
    context = context_of(request)
    with unit.session() as session:
        caller = cds_auth.authenticate(session, **_credentials(request, service_id))
        cds_service.record_feedback(
            session,
            caller=caller,
            service_id=service_id,
            feedback=feedback,
            context=cds_service.FeedbackContext(
                context.keyring, context.clock.now(), request_id_of(request)
            ),
        )
    return Response(status_code=200)
