"""``/v1/webhooks``: a clinic's webhook endpoints, their delivery log, and replays."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.apikey import service as apikey_service
from app.apikey.auth import actor_of, require_scope
from app.audit.denials import marker as audited
from app.context import ClockDep, KeyRingDep, UnitDep
from app.responses import AUTH_ERRORS, INVALID, MALFORMED_PATH, NOT_FOUND, model_response
from app.webhook import service as webhook_service
from app.webhook.schemas import (
    DeliveryLog,
    ReplayQueued,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
)

WebhookAdmin = Annotated[
    apikey_service.Client, Depends(require_scope(apikey_service.WEBHOOKS_WRITE))
]
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    summary="Add a webhook endpoint",
    responses=AUTH_ERRORS | INVALID,
    openapi_extra=audited("webhook.created", "webhook_endpoint"),
)
def create_webhook(
    body: WebhookCreate,
    client: WebhookAdmin,
    unit: UnitDep,
    keyring: KeyRingDep,
    clock: ClockDep,
) -> Response:
    """Add a receiver for this clinic's events; the signing secret is shown only here."""
    with unit.session() as session:
        created = webhook_service.add(
            session,
            keyring=keyring,
            clinic_id=client.clinic_id,
            url=body.url,
            events=list(body.events),
            actor=actor_of(client),
            now=clock.now(),
        )
    headers = {"Location": f"/v1/webhooks/{created.endpoint['id']}"}
    return model_response(
        WebhookCreated, created.endpoint | {"secret": created.secret}, 201, headers
    )


@router.get("", response_model=WebhookList, summary="List webhook endpoints", responses=AUTH_ERRORS)
def list_webhooks(client: WebhookAdmin, unit: UnitDep) -> Response:
    """This clinic's active endpoints (never their secrets)."""
    with unit.session() as session:
        endpoints = webhook_service.list_endpoints(session, clinic_id=client.clinic_id)
        items = [webhook_service.endpoint_dict(endpoint) for endpoint in endpoints]
    return model_response(WebhookList, {"items": items})


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Remove a webhook endpoint",
    responses=AUTH_ERRORS | NOT_FOUND | MALFORMED_PATH,
    openapi_extra=audited("webhook.removed", "webhook_endpoint", path_param="webhook_id"),
)
def delete_webhook(
    webhook_id: uuid.UUID, client: WebhookAdmin, unit: UnitDep, clock: ClockDep
) -> Response:
    """Stop sending to this endpoint; its pending deliveries are marked failed."""
    with unit.session() as session:
        webhook_service.remove(
            session,
            endpoint_id=webhook_id,
            clinic_id=client.clinic_id,
            actor=actor_of(client),
            now=clock.now(),
        )
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryLog,
    summary="Delivery log of an endpoint",
    responses=AUTH_ERRORS | NOT_FOUND | MALFORMED_PATH,
)
def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    client: WebhookAdmin,
    unit: UnitDep,
    limit: Annotated[int, Query(ge=1, le=webhook_service.MAX_LOG)] = 100,
) -> Response:
    """Status, attempts and last error of each delivery, newest first."""
    with unit.session() as session:
        items = webhook_service.delivery_log(
            session, clinic_id=client.clinic_id, endpoint_id=webhook_id, limit=limit
        )
    return model_response(DeliveryLog, {"items": items})


@router.post(
    "/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=ReplayQueued,
    summary="Send a delivery again",
    responses=AUTH_ERRORS | NOT_FOUND | MALFORMED_PATH,
    openapi_extra=audited("webhook.replayed", "webhook_delivery", path_param="delivery_id"),
)
def replay_webhook_delivery(
    delivery_id: uuid.UUID, client: WebhookAdmin, unit: UnitDep, clock: ClockDep
) -> Response:
    """Queue the delivery again with the same event id (receivers de-duplicate by it)."""
    with unit.session() as session:
        count = webhook_service.replay(
            session,
            delivery_or_event_id=str(delivery_id),
            clinic_id=client.clinic_id,
            actor=actor_of(client),
            now=clock.now(),
        )
    return model_response(ReplayQueued, {"queued": count}, 202)
