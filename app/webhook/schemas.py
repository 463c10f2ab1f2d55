"""Request and response bodies of ``/v1/webhooks``."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal[
    "screening.created", "screening.flagged", "screening.reviewed", "invitation.completed"
]


class WebhookCreate(BaseModel):
    """A receiver URL and the event types it wants."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://intake.example.org/hooks/screening",
                    "events": ["screening.created", "screening.reviewed"],
                }
            ]
        },
    )

    url: str = Field(min_length=1, max_length=2000)
    events: list[EventType] = Field(min_length=1, max_length=4)


class WebhookRead(BaseModel):
    """An endpoint (its secret is never shown again)."""

    id: str
    url: str
    events: list[str]
    created_at: str


class WebhookCreated(WebhookRead):
    """A new endpoint with its signing secret, shown this once."""

    secret: str = Field(description="Standard Webhooks secret (whsec_...): store it now.")


class WebhookList(BaseModel):
    """The clinic's endpoints."""

    items: list[WebhookRead]


class DeliveryRead(BaseModel):
    """One delivery of one event to one endpoint."""

    id: str
    event_id: str
    type: str
    endpoint_id: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str
    next_attempt_at: str | None
    delivered_at: str | None


class DeliveryLog(BaseModel):
    """Deliveries, newest first."""

    items: list[DeliveryRead]


class ReplayQueued(BaseModel):
    """How many deliveries were queued again."""

    queued: int
