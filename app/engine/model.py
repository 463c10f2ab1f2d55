"""Pydantic models of the rule pack documents: pack, questionnaire items and rules."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ItemId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Option(_Doc):
    """One listed choice: the stored value and the text a patient reads."""

    value: ItemId
    text: str = Field(min_length=1)


class _ItemBase(_Doc):
    id: ItemId
    text: str = Field(min_length=1)
    help: str | None = None
    why: str | None = None
    required: bool = False
    enable_when: dict[str, Any] | None = None


class YesNoItem(_ItemBase):
    """A question answered "yes" or "no"."""

    type: Literal["yes_no"]


class YesNoUnsureItem(_ItemBase):
    """A question answered "yes", "no" or "unsure" (unsure is unknown to the rules)."""

    type: Literal["yes_no_unsure"]


class ChoiceItem(_ItemBase):
    """A question with one answer from a list."""

    type: Literal["choice"]
    options: tuple[Option, ...] = Field(min_length=1)


class MultiChoiceItem(_ItemBase):
    """A question with any number of answers from a list (at least ``min_selected``)."""

    type: Literal["multi_choice"]
    options: tuple[Option, ...] = Field(min_length=1)
    min_selected: int = Field(default=0, ge=0)


class IntegerItem(_ItemBase):
    """A whole number between ``min`` and ``max`` inclusive."""

    type: Literal["integer"]
    unit: str | None = None
    min: int
    max: int


class DateItem(_ItemBase):
    """A calendar date, never after the as-of date; optionally not before another date item."""

    type: Literal["date"]
    not_before: ItemId | None = None


Item = Annotated[
    YesNoItem | YesNoUnsureItem | ChoiceItem | MultiChoiceItem | IntegerItem | DateItem,
    Field(discriminator="type"),
]


class Group(_Doc):
    """A page of the form and a section of the review screen."""

    id: ItemId
    title: str = Field(min_length=1)
    items: tuple[Item, ...] = Field(min_length=1)


class Questionnaire(_Doc):
    """The questions, grouped in display order."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str = Field(min_length=1)
    groups: tuple[Group, ...] = Field(min_length=1)

    @property
    def items(self) -> tuple[Item, ...]:
        """Every item in display order."""
        return tuple(item for group in self.groups for item in group.items)


class RuleTest(_Doc):
    """One embedded rule test: answers, an optional as-of date, the expected status."""

    name: str = Field(min_length=1)
    answers: dict[str, Any]
    as_of: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    expect: Literal["fired", "clear", "unknown"]


class Rule(_Doc):
    """A screening rule: when it fires, how severe it is, and why."""

    id: ItemId
    title: str = Field(min_length=1)
    severity: Literal["exclude", "review"]
    rationale: str = Field(min_length=1)
    references: tuple[str, ...] = Field(min_length=1)
    when: dict[str, Any]
    tests: tuple[RuleTest, ...] = Field(min_length=1)


class Pack(_Doc):
    """The pack manifest: identity, questionnaire file and rule order."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    version: str = Field(min_length=1)
    title: str = Field(min_length=1)
    questionnaire: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.ya?ml$")
    tests_as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    rules: tuple[ItemId, ...] = Field(min_length=1)
