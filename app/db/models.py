"""Every ORM table: Clinic, ApiKey, RulePack, Screening, ScreeningFlag, Review, AuditEvent, ….

Tables only: API schemas live in each domain's ``schemas.py``. Enums here mirror the wire
values; ``app.db`` may not import the engine, so the decision vocabulary is repeated once.
"""

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, PortableJSON, str_enum

SHA256_HEX = 64
KEY_ID_LENGTH = 32


class Decision(StrEnum):
    """A screening's decision (DESIGN.md "Decision")."""

    candidate = "candidate"
    needs_review = "needs_review"
    not_candidate = "not_candidate"


class Source(StrEnum):
    """How a screening arrived."""

    api = "api"
    form = "form"
    fhir = "fhir"


class FlagSeverity(StrEnum):
    """A rule's severity."""

    exclude = "exclude"
    review = "review"


class FlagStatus(StrEnum):
    """The status of a flagged rule (clear rules are not stored as flags)."""

    fired = "fired"
    unknown = "unknown"


class ActorType(StrEnum):
    """Who did something recorded in the audit trail."""

    api_key = "api_key"
    user = "user"
    invitation = "invitation"
    cli = "cli"
    system = "system"


class AuditOutcome(StrEnum):
    """How an audited action ended."""

    success = "success"
    denied = "denied"
    failed = "failed"
    not_found = "not_found"
    invalid = "invalid"


class Clinic(Base):
    """A tenant: every screening, key and review belongs to exactly one clinic."""

    __tablename__ = "clinic"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    phone: Mapped[str | None] = mapped_column(String(50))
    form_origins: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    require_totp: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime]
    # The clinic's active rule pack (issue 13); None until first used: the server's default.
    rule_pack_sha256: Mapped[str | None] = mapped_column(ForeignKey("rule_pack.sha256"))


class ApiKey(Base):
    """A clinic API key, or a user's personal token (``user_id``); only its sha256 is stored."""

    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(SHA256_HEX), unique=True)
    scopes: Mapped[list[str]] = mapped_column(PortableJSON)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # None: never; rotation sets now + grace
    last_used_at: Mapped[datetime | None]
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))


class RulePack(Base):
    """A rule pack version: sha256 → canonical content. Stored on first load, never updated."""

    __tablename__ = "rule_pack"

    sha256: Mapped[str] = mapped_column(String(SHA256_HEX), primary_key=True)
    pack_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime]


class Screening(Base):
    """A stored screening. PHI (subject, answers, result) is AES-256-GCM encrypted.

    Never updated by the application, except ``keys rotate`` re-encrypting the same plaintext.
    """

    __tablename__ = "screening"
    __table_args__ = (
        # Newest-first listing per clinic, with and without the decision filter (keyset order).
        Index("ix_screening_clinic_created", "clinic_id", "created_at", "id"),
        Index("ix_screening_clinic_decision_created", "clinic_id", "decision", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"))
    created_at: Mapped[datetime]
    as_of_date: Mapped[date] = mapped_column(Date)
    decision: Mapped[Decision] = mapped_column(str_enum(Decision, "decision"))
    has_exclude: Mapped[bool]
    rule_pack_sha256: Mapped[str] = mapped_column(ForeignKey("rule_pack.sha256"))
    source: Mapped[Source] = mapped_column(str_enum(Source, "source"))
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    subject_ct: Mapped[bytes] = mapped_column(LargeBinary)
    answers_ct: Mapped[bytes] = mapped_column(LargeBinary)
    result_ct: Mapped[bytes] = mapped_column(LargeBinary)


class ScreeningFlag(Base):
    """A fired or unknown rule of a screening: filterable without decrypting anything."""

    __tablename__ = "screening_flag"

    screening_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("screening.id"), primary_key=True)
    rule: Mapped[str] = mapped_column(String(100), primary_key=True)
    severity: Mapped[FlagSeverity] = mapped_column(str_enum(FlagSeverity, "flag_severity"))
    status: Mapped[FlagStatus] = mapped_column(str_enum(FlagStatus, "flag_status"))


class IdempotencyKey(Base):
    """A clinic's ``Idempotency-Key`` and the screening its first request created."""

    __tablename__ = "idempotency_key"

    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(SHA256_HEX))
    screening_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("screening.id"))
    created_at: Mapped[datetime] = mapped_column(index=True)


class Review(Base):
    """A physician's sign-off on a screening (append-only; the latest one counts)."""

    __tablename__ = "review"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    screening_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("screening.id"), index=True)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"))
    reviewer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))
    disposition: Mapped[str] = mapped_column(String(32))
    override_reason: Mapped[str | None] = mapped_column(String(100))
    note_ct: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    created_at: Mapped[datetime]


class AuditHead(Base):
    """The single row (id 1) holding the chain's last seq and hash; locked by every append."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(SHA256_HEX))


class AuditEvent(Base):
    """One audit event in the hash chain. Database triggers reject UPDATE and DELETE."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_clinic_seq", "clinic_id", "seq"),
        Index("ix_audit_event_target", "target_type", "target_id", "seq"),
    )

    # Assigned by audit.service.append from audit_head.seq + 1: gap-free, never autoincrement.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime]
    actor_type: Mapped[ActorType] = mapped_column(str_enum(ActorType, "actor_type"))
    actor_id: Mapped[str | None] = mapped_column(String(100))
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clinic.id"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(100))
    target_sha256: Mapped[str | None] = mapped_column(String(SHA256_HEX))
    outcome: Mapped[AuditOutcome] = mapped_column(str_enum(AuditOutcome, "audit_outcome"))
    request_id: Mapped[str | None] = mapped_column(String(64))
    ruleset_sha256: Mapped[str | None] = mapped_column(String(SHA256_HEX))
    detail: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    prev_hash: Mapped[str] = mapped_column(String(SHA256_HEX))
    hash: Mapped[str] = mapped_column(String(SHA256_HEX), unique=True)


# --- Physician review (accounts, sessions) and patient invitations --------------------------


class Role(StrEnum):
    """What a clinic user may do."""

    physician = "physician"
    admin = "admin"


class UserAccount(Base):
    """A physician or clinic admin who signs in to review screenings."""

    __tablename__ = "user_account"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    # Stored lower-cased; unique across clinics so sign-in needs no clinic picker.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(default=False)
    totp_secret_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_key_id: Mapped[str | None] = mapped_column(String(KEY_ID_LENGTH))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
    # The last accepted TOTP time step (unix time // 30): a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class WebSession(Base):
    """A signed-in browser session; the cookie holds the token, the table only its sha256."""

    __tablename__ = "web_session"

    token_hash: Mapped[str] = mapped_column(String(SHA256_HEX), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class LoginFailure(Base):
    """Failed sign-ins per sha256 of the lower-cased email, whether or not the account exists."""

    __tablename__ = "login_failure"

    email_hash: Mapped[str] = mapped_column(String(SHA256_HEX), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class Invitation(Base):
    """A patient's link to the form: one clinic, one subject, one submission, an expiry.

    Only the sha256 of the token is stored. Answers in progress are kept encrypted here
    between pages (no cookies needed inside a third-party iframe).
    """

    __tablename__ = "invitation"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(SHA256_HEX), unique=True)
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    subject_ct: Mapped[bytes] = mapped_column(LargeBinary)
    draft_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    screening_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("screening.id"))
    # The pack active when the invitation was created: the form and its evaluation use it.
    rule_pack_sha256: Mapped[str | None] = mapped_column(ForeignKey("rule_pack.sha256"))


class CdsClient(Base):
    """An EHR that may call the CDS Hooks services for one clinic: its JWT issuer and JWKS URL."""

    __tablename__ = "cds_client"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    issuer: Mapped[str] = mapped_column(String(500), unique=True)
    jwks_url: Mapped[str] = mapped_column(String(2000))
    # EHR user reference (context.userId, e.g. "Practitioner/123") → our user id, as text.
    practitioners: Mapped[dict[str, str] | None] = mapped_column(PortableJSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# --- Interoperability: webhooks (transactional outbox, endpoints, deliveries) -----------------


class DeliveryStatus(StrEnum):
    """Where a webhook delivery stands."""

    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class WebhookEndpoint(Base):
    """A clinic's webhook receiver: URL, subscribed event types, signing secret (encrypted)."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(PortableJSON)
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    secret_ct: Mapped[bytes] = mapped_column(LargeBinary)
    # The audit seq of its creation: it receives the events of later changes only.
    since_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class WebhookEvent(Base):
    """The outbox: an event written in the transaction of the change it reports.

    Ordered by the audit event that carried the change (``audit_seq``, then ``position``).
    """

    __tablename__ = "webhook_event"
    __table_args__ = (Index("ix_webhook_event_dispatched", "is_dispatched", "audit_seq"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"))
    type: Mapped[str] = mapped_column(String(64))
    order_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    created_at: Mapped[datetime]
    is_dispatched: Mapped[bool] = mapped_column(default=False, server_default=false())


class WebhookDelivery(Base):
    """One event to one endpoint: its status, attempts, next attempt, lease and last error."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_status", "status", "audit_seq", "position"),
        Index("ix_webhook_delivery_endpoint", "endpoint_id", "created_at"),
        UniqueConstraint("event_id", "endpoint_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_event.id"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoint.id"))
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
    order_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, "delivery_status"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


# Registers the policy tables, kept in their own module (module budget), on the metadata.
from app.db import policy_models as policy_models  # noqa: E402
