"""Webhook endpoints of a clinic (add, list, remove), their delivery log, and replays.

Contracts: never commits; every change is audited in the same transaction. A new endpoint's
signing secret (Standard Webhooks ``whsec_...``) is returned once and stored encrypted with
the data keys; another clinic's endpoint or delivery is NotFound.
"""

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit import canonical
from app.audit import service as audit_service
from app.audit.outbox import EVENT_TYPES
from app.crypto import KeyRing, field_aad
from app.db.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from app.errors import NotFound, ProblemItem, ValidationFailed

MAX_LOG = 500


@dataclass(frozen=True, slots=True)
class Created:
    """A new endpoint and its signing secret (shown this once)."""

    endpoint: dict[str, Any]
    secret: str


def _aad(endpoint_id: uuid.UUID) -> bytes:
    return field_aad("webhook_endpoint", "secret_ct", endpoint_id)


def secret_of(keyring: KeyRing, endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret, decrypted."""
    return keyring.decrypt(endpoint.key_id, endpoint.secret_ct, _aad(endpoint.id)).decode()


def endpoint_dict(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The JSON form of an endpoint (never its secret)."""
    return {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "events": list(endpoint.events),
        "created_at": canonical.format_datetime(endpoint.created_at),
    }


def check(url: str, events: list[str]) -> None:
    """ValidationFailed unless ``url`` is http(s) and ``events`` are known, without repeats."""
    problems = []
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        problems.append(ProblemItem("bad_url", "url must be an http(s) URL.", pointer="#/url"))
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if not events or unknown or len(set(events)) != len(events):
        message = f"events must be distinct, from: {', '.join(EVENT_TYPES)}."
        problems.append(ProblemItem("bad_events", message, pointer="#/events"))
    if problems:
        raise ValidationFailed("The webhook endpoint is not valid.", errors=problems)


def add(
    session: Session,
    *,
    keyring: KeyRing,
    clinic_id: uuid.UUID,
    url: str,
    events: list[str],
    actor: audit_service.Actor,
    now: datetime,
) -> Created:
    """Add an endpoint receiving ``events`` from now on; audited as ``webhook.created``."""
    check(url, events)
    endpoint_id = uuid.uuid4()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    key_id, secret_ct = keyring.encrypt(secret.encode(), _aad(endpoint_id))
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        clinic_id=clinic_id,
        url=url,
        events=list(events),
        key_id=key_id,
        secret_ct=secret_ct,
        since_seq=0,
        created_at=now,
        removed_at=None,
    )
    session.add(endpoint)
    session.flush()
    appended = audit_service.append(
        session,
        action="webhook.created",
        actor=actor,
        clinic_id=clinic_id,
        target_type="webhook_endpoint",
        target_id=endpoint_id,
        detail={"events": list(events)},
    )
    endpoint.since_seq = appended.seq  # events of changes audited after this one
    session.flush()
    return Created(endpoint_dict(endpoint), secret)


def list_endpoints(session: Session, *, clinic_id: uuid.UUID | None) -> list[WebhookEndpoint]:
    """Active endpoints, oldest first: of one clinic, or of all (``None``, the CLI)."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.removed_at.is_(None))
    if clinic_id is not None:
        query = query.where(WebhookEndpoint.clinic_id == clinic_id)
    return list(session.scalars(query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))


def _endpoint(
    session: Session, endpoint_id: uuid.UUID, clinic_id: uuid.UUID | None
) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.removed_at is not None:
        raise NotFound("No webhook endpoint with this id.")
    if clinic_id is not None and endpoint.clinic_id != clinic_id:
        raise NotFound("No webhook endpoint with this id.")
    return endpoint


def remove(
    session: Session,
    *,
    endpoint_id: uuid.UUID,
    clinic_id: uuid.UUID | None,
    actor: audit_service.Actor,
    now: datetime,
) -> None:
    """Stop sending to an endpoint (its log stays); pending deliveries are marked failed."""
    endpoint = _endpoint(session, endpoint_id, clinic_id)
    endpoint.removed_at = now
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.pending,
        )
        .values(status=DeliveryStatus.failed, last_error="endpoint removed", lease_until=None)
    )
    session.flush()
    audit_service.append(
        session,
        action="webhook.removed",
        actor=actor,
        clinic_id=endpoint.clinic_id,
        target_type="webhook_endpoint",
        target_id=endpoint_id,
    )


def delivery_dict(delivery: WebhookDelivery, event_type: str) -> dict[str, Any]:
    """One row of the delivery log."""
    stamp = canonical.format_datetime
    return {
        "id": str(delivery.id),
        "event_id": delivery.event_id,
        "type": event_type,
        "endpoint_id": str(delivery.endpoint_id),
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "created_at": stamp(delivery.created_at),
        "next_attempt_at": None
        if delivery.status is not DeliveryStatus.pending
        else stamp(delivery.next_attempt_at),
        "delivered_at": None if delivery.delivered_at is None else stamp(delivery.delivered_at),
    }


def delivery_log(
    session: Session,
    *,
    clinic_id: uuid.UUID | None,
    endpoint_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest deliveries (of one endpoint, or all the clinic's), newest first."""
    query = (
        select(WebhookDelivery, WebhookEvent.type)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    )
    if clinic_id is not None:
        query = query.where(WebhookEndpoint.clinic_id == clinic_id)
    if endpoint_id is not None:
        _endpoint(session, endpoint_id, clinic_id)
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    rows = session.execute(
        query.order_by(WebhookDelivery.audit_seq.desc(), WebhookDelivery.position.desc()).limit(
            min(limit, MAX_LOG)
        )
    )
    return [delivery_dict(delivery, event_type) for delivery, event_type in rows]


def replay(
    session: Session,
    *,
    delivery_or_event_id: str,
    clinic_id: uuid.UUID | None,
    actor: audit_service.Actor,
    now: datetime,
) -> int:
    """Send a delivery (or every delivery of an event) again, with the same event id.

    Returns how many deliveries were queued; NotFound if none is this caller's.
    """
    query = select(WebhookDelivery, WebhookEndpoint.clinic_id).join(
        WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id
    )
    try:
        query = query.where(WebhookDelivery.id == uuid.UUID(delivery_or_event_id))
    except ValueError:
        query = query.where(WebhookDelivery.event_id == delivery_or_event_id)
    if clinic_id is not None:
        query = query.where(WebhookEndpoint.clinic_id == clinic_id)
    deliveries = [
        (delivery, owner)
        for delivery, owner in session.execute(query.where(WebhookEndpoint.removed_at.is_(None)))
    ]
    if not deliveries:
        raise NotFound("No webhook delivery or event with this id.")
    for delivery, _clinic in deliveries:
        # A replay is a new delivery of the same event: its retry window starts now.
        delivery.status, delivery.attempts, delivery.created_at = DeliveryStatus.pending, 0, now
        delivery.next_attempt_at, delivery.lease_until, delivery.delivered_at = now, None, None
    session.flush()
    for delivery, owner in deliveries:
        audit_service.append(
            session,
            action="webhook.replayed",
            actor=actor,
            clinic_id=owner,
            target_type="webhook_delivery",
            target_id=delivery.id,
            detail={"event_id": delivery.event_id},
        )
    return len(deliveries)
