"""The webhook delivery worker: fan out outbox events, send them signed, retry, give up.

One pass (``run_once``):
1. **Dispatch**: each new outbox event gets one delivery per active endpoint of its clinic
   that subscribes to its type and was added before the change (by audit sequence); the
   event is then marked dispatched (a conditional update: no two workers fan it out).
2. **Claim**: per endpoint and screening (``order_key``), only the oldest pending delivery
   may be sent, so a screening's events arrive in order; a due one is leased with a
   conditional update (no two workers send it at once; a crashed worker's lease expires).
3. **Send** outside any transaction, signed per Standard Webhooks (``standardwebhooks``).
4. **Record**: 2xx is delivered; anything else is retried with exponential back-off and
   jitter until the delivery is ``Policy.retry_window`` old, then failed.

Delivery is at least once: a crash between send and record sends again, with the same
``webhook-id``, which receivers de-duplicate by.
"""

import json
import logging
import random
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from app.crypto import KeyRing
from app.db.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from app.db.unit import session_scope
from app.webhook import service as webhook_service

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Policy:
    """Retry and batching policy. Delays double from ``base_delay`` up to ``max_delay``."""

    base_delay: float = 1.0
    max_delay: float = 1800.0
    retry_window: timedelta = timedelta(hours=24)
    lease: timedelta = timedelta(seconds=30)
    timeout: float = 10.0
    batch: int = 100
    scan: int = 2000

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        """Back-off after ``attempts`` failures: exponential, capped, with equal jitter."""
        ceiling = min(self.base_delay * 2 ** max(attempts - 1, 0), self.max_delay)
        return timedelta(seconds=ceiling / 2 + rng.random() * ceiling / 2)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A leased delivery with everything needed to send it."""

    delivery_id: uuid.UUID
    event_id: str
    url: str
    secret: str
    body: str


@dataclass(frozen=True, slots=True)
class Sent:
    """What the receiver answered: a status code, or the transport error's name."""

    status: int | None
    error: str | None

    @property
    def is_ok(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


Sender = Callable[[Claimed, datetime, float], Sent]


def send(claimed: Claimed, now: datetime, timeout: float) -> Sent:
    """POST the event signed with the endpoint's secret (webhook-id/-timestamp/-signature)."""
    signature = Webhook(claimed.secret).sign(claimed.event_id, now, claimed.body)
    request = urllib.request.Request(
        claimed.url,
        data=claimed.body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "candidacy-screening-webhooks",
            "webhook-id": claimed.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Sent(answer.status, None)
    except urllib.error.HTTPError as error:
        return Sent(error.code, f"HTTP {error.code}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        return Sent(None, type(error).__name__)


def dispatch(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Fan new outbox events out to their endpoints; return how many events were taken."""
    events = list(
        session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.is_dispatched.is_(False))
            .order_by(WebhookEvent.audit_seq, WebhookEvent.position)
            .limit(limit)
        )
    )
    endpoints: dict[uuid.UUID, list[WebhookEndpoint]] = {}
    taken = 0
    for event in events:
        claimed = session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event.id, WebhookEvent.is_dispatched.is_(False))
            .values(is_dispatched=True)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another worker took it
        taken += 1
        if event.clinic_id not in endpoints:
            endpoints[event.clinic_id] = webhook_service.list_endpoints(
                session, clinic_id=event.clinic_id
            )
        for endpoint in endpoints[event.clinic_id]:
            if event.type in endpoint.events and event.audit_seq > endpoint.since_seq:
                session.add(_delivery(event, endpoint, now))
    session.flush()
    return taken


def _delivery(event: WebhookEvent, endpoint: WebhookEndpoint, now: datetime) -> WebhookDelivery:
    return WebhookDelivery(
        id=uuid.uuid4(),
        event_id=event.id,
        endpoint_id=endpoint.id,
        audit_seq=event.audit_seq,
        position=event.position,
        order_key=event.order_key,
        status=DeliveryStatus.pending,
        attempts=0,
        next_attempt_at=now,
        lease_until=None,
        created_at=now,
    )


def claim(session: Session, *, keyring: KeyRing, now: datetime, policy: Policy) -> list[Claimed]:
    """Lease the due deliveries that head their (endpoint, screening) queue."""
    rows = session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.endpoint_id,
            WebhookDelivery.order_key,
            WebhookDelivery.next_attempt_at,
            WebhookDelivery.lease_until,
        )
        .where(WebhookDelivery.status == DeliveryStatus.pending)
        .order_by(WebhookDelivery.audit_seq, WebhookDelivery.position)
        .limit(policy.scan)
    ).all()
    heads: dict[tuple[uuid.UUID, str], tuple[uuid.UUID, datetime, datetime | None]] = {}
    for delivery_id, endpoint_id, order_key, next_at, lease in rows:
        heads.setdefault((endpoint_id, order_key), (delivery_id, next_at, lease))
    due = [
        delivery_id
        for delivery_id, next_at, lease in heads.values()
        if next_at <= now and (lease is None or lease <= now)
    ][: policy.batch]
    leased = [delivery_id for delivery_id in due if _lease(session, delivery_id, now, policy)]
    return [_claimed(session, keyring, delivery_id) for delivery_id in leased]


def _lease(session: Session, delivery_id: uuid.UUID, now: datetime, policy: Policy) -> bool:
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.pending,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
        )
        .values(lease_until=now + policy.lease)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _claimed(session: Session, keyring: KeyRing, delivery_id: uuid.UUID) -> Claimed:
    delivery, event, endpoint = session.execute(
        select(WebhookDelivery, WebhookEvent, WebhookEndpoint)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id)
    ).one()
    body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True)
    secret = webhook_service.secret_of(keyring, endpoint)
    return Claimed(delivery.id, event.id, endpoint.url, secret, body)


def record(
    session: Session,
    *,
    delivery_id: uuid.UUID,
    sent: Sent,
    now: datetime,
    policy: Policy,
    rng: random.Random,
) -> DeliveryStatus:
    """Store the outcome of one attempt; return the delivery's new status."""
    delivery = session.get_one(WebhookDelivery, delivery_id)
    delivery.attempts += 1
    delivery.last_status, delivery.last_error, delivery.lease_until = sent.status, None, None
    if sent.is_ok:
        delivery.status, delivery.delivered_at = DeliveryStatus.delivered, now
    else:
        delivery.last_error = (sent.error or "no answer")[:500]
        if now - delivery.created_at >= policy.retry_window:
            delivery.status = DeliveryStatus.failed
        else:
            delivery.next_attempt_at = now + policy.delay(delivery.attempts, rng)
    session.flush()
    return delivery.status


@dataclass
class Deliverer:
    """Runs passes of dispatch, claim, send and record against one database."""

    factory: sessionmaker[Session]
    keyring: KeyRing
    policy: Policy = field(default_factory=Policy)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sender: Sender = send
    rng: random.Random = field(default_factory=random.Random)

    def run_once(self) -> int:
        """One pass; returns how many deliveries were attempted."""
        with session_scope(self.factory) as session:
            dispatch(session, now=self.clock())
        with session_scope(self.factory) as session:
            batch = claim(session, keyring=self.keyring, now=self.clock(), policy=self.policy)
        for claimed in batch:
            sent = self.sender(claimed, self.clock(), self.policy.timeout)
            with session_scope(self.factory) as session:
                record(session, delivery_id=claimed.delivery_id, sent=sent, now=self.clock(),
                       policy=self.policy, rng=self.rng)  # fmt: skip
        return len(batch)

    def run(self, stop: threading.Event, idle: float = 0.5) -> None:
        """Pass after pass until ``stop`` is set; waits ``idle`` seconds when nothing was due."""
        while not stop.is_set():
            try:
                attempted = self.run_once()
            except Exception as error:  # the worker must outlive a database hiccup
                logger.error("webhook delivery pass failed: %s", type(error).__name__)
                attempted = 0
            if attempted == 0:
                stop.wait(idle)


class WorkerThread:
    """The delivery worker as a daemon thread of the serve process."""

    def __init__(self, deliverer: Deliverer) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=deliverer.run, args=(self._stop,), name="webhook-delivery", daemon=True
        )

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the current pass and stop (nothing to do if it never started)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)


def start(factory: sessionmaker[Session], keyring: KeyRing, *, enabled: bool) -> WorkerThread:
    """Start the delivery worker of a serve process (if ``enabled``); ``stop()`` on shutdown."""
    thread = WorkerThread(Deliverer(factory, keyring))
    if enabled:
        thread.start()
    return thread
