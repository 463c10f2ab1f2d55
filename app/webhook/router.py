"""``/v1/webhooks``: a clinic's webhook endpoints, their delivery log, and replays."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.apikey import service as apikey_service
from app.deps import (
    KeyRingDep,
    TransactionDep,
    actor_of,
    audited,
    clock_of,
    require_scope,
)
from app.responses import AUTH_ERRORS, INVALID, NOT_FOUND, json_response
from app.webhook import service as webhook_service
from app.webhook.schemas import DeliveryLog, WebhookCreate, WebhookCreated, WebhookList

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
    request: Request,
    body: WebhookCreate,
    client: WebhookAdmin,
    transaction: TransactionDep,
    keyring: KeyRingDep,
) -> Response:
    """Add a receiver for this clinic's events; the signing secret is shown only here."""
    with transaction as session:
        created = webhook_service.add(
            session,
            keyring=keyring,
            clinic_id=client.clinic_id,
            url=body.url,
            events=list(body.events),
            actor=actor_of(client),
            now=clock_of(request).now(),
        )
    headers = {"Location": f"/v1/webhooks/{created.endpoint['id']}"}
    return json_response(created.endpoint | {"secret": created.secret}, 201, headers)


@router.get("", response_model=WebhookList, summary="List webhook endpoints", responses=AUTH_ERRORS)
def list_webhooks(client: WebhookAdmin, transaction: TransactionDep) -> Response:
    """This clinic's active endpoints (never their secrets)."""
    with transaction as session:
        endpoints = webhook_service.list_endpoints(session, clinic_id=client.clinic_id)
        items = [webhook_service.endpoint_dict(endpoint) for endpoint in endpoints]
    return json_response({"items": items})


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Remove a webhook endpoint",
    responses=AUTH_ERRORS | NOT_FOUND,
    openapi_extra=audited("webhook.removed", "webhook_endpoint", path_param="webhook_id"),
)
def delete_webhook(
    request: Request, webhook_id: uuid.UUID, client: WebhookAdmin, transaction: TransactionDep
) -> Response:
    """Stop sending to this endpoint; its pending deliveries are marked failed."""
    with transaction as session:
        webhook_service.remove(
            session,
            endpoint_id=webhook_id,
            clinic_id=client.clinic_id,
            actor=actor_of(client),
            now=clock_of(request).now(),
        )
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryLog,
    summary="Delivery log of an endpoint",
    responses=AUTH_ERRORS | NOT_FOUND,
)
def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    client: WebhookAdmin,
    transaction: TransactionDep,
    limit: Annotated[int, Query(ge=1, le=webhook_service.MAX_LOG)] = 100,
) -> Response:
    """Status, attempts and last error of each delivery, newest first."""
    with transaction as session:
        items = webhook_service.delivery_log(
            session, clinic_id=client.clinic_id, endpoint_id=webhook_id, limit=limit
        )
    return json_response({"items": items})


@router.post(
    "/deliveries/{delivery_id}/replay",
    status_code=202,
    summary="Send a delivery again",
    responses=AUTH_ERRORS | NOT_FOUND,
    openapi_extra=audited("webhook.replayed", "webhook_delivery", path_param="delivery_id"),
)
def replay_webhook_delivery(
    request: Request, delivery_id: uuid.UUID, client: WebhookAdmin, transaction: TransactionDep
) -> Response:
    """Queue the delivery again with the same event id (receivers de-duplicate by it)."""
    with transaction as session:
        count = webhook_service.replay(
            session,
            delivery_or_event_id=str(delivery_id),
            clinic_id=client.clinic_id,
            actor=actor_of(client),
            now=clock_of(request).now(),
        )
    return json_response({"queued": count}, 202)
