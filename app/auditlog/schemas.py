"""Response bodies of the audit API, with their OpenAPI examples."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from app.audit.canonical import Timestamp

EVENT_EXAMPLE: dict[str, Any] = {
    "seq": 4812,
    "occurred_at": "2026-06-15T14:03:27.514210Z",
    "actor_type": "api_key",
    "actor_id": "5d0b2c4e-8f1a-4b6c-9e3d-2a7f1c0b9e84",
    "action": "screening.read",
    "target_type": "screening",
    "target_id": "0b8f9d3e-5c1a-4e2b-9f7d-6a3c2b1e0d4f",
    "target_sha256": "9c1e4f0b7a2d5c8e3f6a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e",
    "outcome": "success",
    "request_id": "2f6d0c9b8a7e4d3c",
    "ruleset_sha256": "3f0c5b1e9d2a4c6b8e7f1a2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3",
    "detail": {"via": "api"},
    "hash": "51d4c0a9e8b7f6a5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1",
    "prev_hash": "e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2",
}


class AuditEventRead(BaseModel):
    """One event of the hash chain: who did what to which record, and how it ended.

    ``hash`` is ``sha256(prev_hash || canonical JSON of the event)``; ``target_sha256`` is the
    digest of the target's stored content at that moment. Never PHI.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [EVENT_EXAMPLE]})

    seq: int
    occurred_at: Timestamp
    actor_type: Literal["api_key", "user", "invitation", "cli", "system"]
    actor_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    target_sha256: str | None
    outcome: Literal["success", "denied", "failed", "not_found", "invalid"]
    request_id: str | None
    ruleset_sha256: str | None
    detail: dict[str, Any] | None
    hash: str
    prev_hash: str


class AuditEventPage(BaseModel):
    """One page of the clinic's events, oldest first; pass ``next_cursor`` back as ``cursor``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EVENT_EXAMPLE], "next_cursor": "4812"}]}
    )

    items: list[AuditEventRead]
    next_cursor: str | None
