"""Request bodies of the CDS Hooks endpoints (CDS Hooks 2.0; extensions are allowed)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.text import Line, MultiLine


class _Spec(BaseModel):
    # The spec lets clients add `extension` members and future fields: accept and ignore.
    model_config = ConfigDict(extra="allow")


class HookRequest(_Spec):
    """A hook call: which hook, this invocation's id, its context and prefetched data."""

    hook: str = Field(min_length=1, max_length=100)
    hookInstance: str = Field(min_length=1, max_length=100)
    fhirServer: str | None = None
    fhirAuthorization: dict[str, Any] | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


class Coding(_Spec):
    """A FHIR Coding as CDS Hooks uses it."""

    code: str = Field(min_length=1, max_length=100)
    system: str | None = Field(default=None, max_length=500)
    display: Line | None = None


class OverrideReason(_Spec):
    """Why a user overrode a card: a coded reason and an optional comment."""

    reason: Coding | None = None
    userComment: MultiLine | None = None


class FeedbackItem(_Spec):
    """What the user did with one card."""

    card: str = Field(min_length=1, max_length=100)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[dict[str, Any]] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str = Field(min_length=1, max_length=64)


class FeedbackRequest(_Spec):
    """One or more card outcomes."""

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=50)


class ServiceRead(BaseModel):
    """One CDS service of the discovery document."""

    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str]
    usageRequirements: str


class DiscoveryRead(BaseModel):
    """The discovery document: the services offered."""

    services: list[ServiceRead]


class CodingRead(BaseModel):
    """A coded value of a card (its topic, an override reason)."""

    system: str
    code: str
    display: str


class SourceRead(BaseModel):
    """Where a card comes from."""

    label: str
    topic: CodingRead


class LinkRead(BaseModel):
    """A link on a card (the physician's review page)."""

    label: str
    url: str
    type: Literal["absolute", "smart"]


class CardRead(BaseModel):
    """A CDS Hooks card."""

    uuid: str
    summary: str = Field(max_length=140)
    detail: str
    indicator: Literal["info", "warning", "critical"]
    source: SourceRead
    overrideReasons: list[CodingRead] | None = None
    links: list[LinkRead] | None = None


class CardsRead(BaseModel):
    """A service's answer: the cards (one here)."""

    cards: list[CardRead]
