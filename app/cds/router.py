"""CDS Hooks 2.0 endpoints: discovery, the two services, and their feedback.

Calls authenticate with the EHR's JWT (``app/cds/auth.py``); a missing, bad or expired JWT is
401, and every call, refused ones included, is an audit event.
"""

from typing import Any

from fastapi import APIRouter, Request, Response

from app.cds import auth as cds_auth
from app.cds import service as cds_service
from app.cds.schemas import FeedbackRequest, HookRequest
from app.deps import TransactionDep, audited, clock_of, keyring_of, request_id_of, ruleset_of
from app.responses import INVALID, NOT_FOUND, json_response, problem_doc, problem_example

router = APIRouter(prefix="/cds-services", tags=["cds-hooks"])
_UNAUTHORIZED = {
    401: problem_doc(
        "Missing, malformed, expired or unverifiable JWT, or an unknown issuer.",
        problem_example(401, "unauthorized", "The CDS client's JWT is not valid: expired."),
    )
}


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _jwks(request: Request) -> cds_auth.JwksCache:
    cache: cds_auth.JwksCache | None = getattr(request.app.state, "cds_jwks", None)
    if cache is None:
        cache = request.app.state.cds_jwks = cds_auth.JwksCache()
    return cache


def _credentials(request: Request, service_id: str) -> dict[str, Any]:
    """What ``cds_auth.authenticate`` checks: the header, the audiences, the time, the keys."""
    service_url = f"{_base_url(request)}/cds-services/{service_id}"
    return {
        "authorization": request.headers.get("Authorization"),
        "audiences": (service_url, str(request.url).split("?", 1)[0]),
        "now": clock_of(request).now(),
        "jwks": _jwks(request),
    }


@router.get("", summary="CDS Hooks discovery")
def discover_cds_services(request: Request) -> Response:
    """The CDS services offered: patient-view and appointment-book."""
    questionnaire_id = ruleset_of(request).questionnaire.id
    return json_response(
        cds_service.discovery(base_url=_base_url(request), questionnaire_id=questionnaire_id)
    )


@router.post(
    "/{service_id}",
    summary="Call a CDS service",
    openapi_extra=audited("cds.advised", "cds_card"),
    responses=_UNAUTHORIZED | NOT_FOUND | INVALID,
)
def call_cds_service(
    request: Request, service_id: str, hook: HookRequest, transaction: TransactionDep
) -> Response:
    """One card: critical (contraindication), warning (needs review, unknown), info (candidate)."""
    advice = cds_service.Advice(
        ruleset_of(request),
        keyring_of(request),
        _base_url(request),
        clock_of(request).today(),
        request_id_of(request),
    )
    with transaction as session:
        caller = cds_auth.authenticate(session, **_credentials(request, service_id))
        cards = cds_service.advise(
            session, caller=caller, service_id=service_id, hook=hook, advice=advice
        )
    return json_response(cards)


@router.post(
    "/{service_id}/feedback",
    summary="Feedback on a card: accepted or overridden",
    openapi_extra=audited("cds.feedback_recorded", "cds_card"),
    responses=_UNAUTHORIZED | NOT_FOUND | INVALID,
)
def record_cds_feedback(
    request: Request, service_id: str, feedback: FeedbackRequest, transaction: TransactionDep
) -> Response:
    """Record what the clinician did with each card (a linked physician's override: a review)."""
    with transaction as session:
        caller = cds_auth.authenticate(session, **_credentials(request, service_id))
        cds_service.record_feedback(
            session,
            caller=caller,
            service_id=service_id,
            feedback=feedback,
            context=cds_service.FeedbackContext(
                keyring_of(request), clock_of(request).now(), request_id_of(request)
            ),
        )
    return Response(status_code=200)
