"""Request bodies of the CDS Hooks endpoints (CDS Hooks 2.0; extensions are allowed)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    display: str | None = None


class OverrideReason(_Spec):
    """Why a user overrode a card: a coded reason and an optional comment."""

    reason: Coding | None = None
    userComment: str | None = None


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
