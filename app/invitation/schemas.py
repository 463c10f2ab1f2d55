"""Request and response bodies of the invitation API."""

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.text import Line


class SubjectRef(BaseModel):
    """Who is invited, as the clinic's own reference (an MRN or intake id). Stored encrypted."""

    model_config = ConfigDict(extra="forbid")

    reference: Line = Field(min_length=1, max_length=200, examples=["MRN-0042-7781"])


class InvitationCreate(BaseModel):
    """A patient invitation: whom it is for, and optionally the language and expiry."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"subject": {"reference": "MRN-0042-7781"}, "language": "es"}]
        },
    )

    subject: SubjectRef
    language: Literal["en", "es"] = Field(
        default="en", description="The form's first language; the patient can switch."
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="When the link stops working: in the future, at most 30 days away. "
        "Default: 7 days from now.",
    )


class InvitationRead(BaseModel):
    """The link to send to the patient (it holds the only copy of the token) and its expiry."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://screening.example/form/0b8f9d3e-5c1a-4e2b-9f7d-6a3c2b1e0d4f/"
                    "Qm9vay1vZi10aGUtbW9udGgtdG9rZW4tZXhhbXBsZS0xMjM",
                    "expires_at": "2026-06-22T14:30:00Z",
                }
            ]
        }
    )

    url: str
    expires_at: datetime
