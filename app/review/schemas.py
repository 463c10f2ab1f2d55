"""Request and response bodies of the review API, and the sign-off form."""

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.audit.canonical import Timestamp
from app.text import MultiLine

DispositionValue = Literal["cleared", "declined", "needs_more_information"]
OverrideReason = Literal[
    "answer_corrected", "condition_resolved", "specialist_cleared", "benefit_outweighs_risk"
]
REVIEW_EXAMPLE: dict[str, Any] = {
    "id": "6a1f0d2e-93c4-4b8e-8f1a-2c3d4e5f6a7b",
    "screening_id": "0b8f9d3e-5c1a-4e2b-9f7d-6a3c2b1e0d4f",
    "disposition": "cleared",
    "override_reason": None,
    "note": "BP rechecked in clinic: 132/84.",
    "reviewer": {"id": "2d0c7a3e-1b5f-4a8e-9c6d-7e8f9a0b1c2d", "name": "Dr Rivera"},
    "created_at": "2026-06-15T15:02:11.034000Z",
}


class ReviewCreate(BaseModel):
    """A physician's sign-off. Clearing a fired exclude needs ``override_reason`` and a note."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"disposition": "cleared", "note": "BP rechecked in clinic: 132/84."},
                {
                    "disposition": "cleared",
                    "override_reason": "answer_corrected",
                    "note": "Patient confirmed on the phone she is not pregnant (test today).",
                },
            ]
        },
    )

    disposition: DispositionValue
    note: MultiLine = Field(default="", max_length=2000)
    override_reason: OverrideReason | None = None


class ReviewerRead(BaseModel):
    """Who signed."""

    id: uuid.UUID
    name: str


class ReviewRead(BaseModel):
    """A stored review (reviews are append-only; the latest one counts)."""

    model_config = ConfigDict(json_schema_extra={"examples": [REVIEW_EXAMPLE]})

    id: uuid.UUID
    screening_id: uuid.UUID
    disposition: DispositionValue
    override_reason: str | None
    note: str
    reviewer: ReviewerRead
    created_at: Timestamp


class ReviewList(BaseModel):
    """A screening's reviews, newest first."""

    items: list[ReviewRead]


class SignOffForm(BaseModel):
    """The sign-off form of the detail page; ``etag`` is the version it was rendered from."""

    model_config = ConfigDict(extra="forbid")

    csrf_token: str = Field(default="", max_length=100)
    etag: str = Field(default="", max_length=100)
    disposition: str = Field(default="", max_length=40)
    override_reason: str = Field(default="", max_length=40)
    note: MultiLine = Field(default="", max_length=4000)
    then: str = Field(default="", max_length=10)
    decision: str = Field(default="", max_length=40)
    rule: str = Field(default="", max_length=100)
    status: str = Field(default="", max_length=40)
