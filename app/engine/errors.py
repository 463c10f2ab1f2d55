"""Errors raised by the rules core: invalid rule packs and invalid answers."""

from dataclasses import dataclass


class RulesError(Exception):
    """Root of every error the rules core raises on bad input."""


class RulesetError(RulesError):
    """A rule pack that cannot be used, with every problem found (not just the first).

    Each problem is one line: ``file:line: where: what is wrong``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid rule pack:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class AnswerError:
    """One problem with a submitted answer.

    Attributes:
        code: stable machine code (``unknown_item``, ``item_disabled``, ``wrong_type``,
            ``out_of_range``, ``bad_choice``, ``empty_selection``, ``duplicate_choice``,
            ``none_not_alone``, ``future_date``,
            ``invalid_date``, ``inconsistent_dates``, ``not_an_object``).
        item: the item id the problem is about (empty for the whole object).
        message: a sentence for an integrating developer. It never repeats the submitted
            value, so it is safe to log and to return to any client.
    """

    code: str
    item: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """Return the error as a JSON-ready mapping."""
        return {"code": self.code, "item": self.item, "message": self.message}


class AnswerErrors(RulesError):
    """Every problem found in one answers object; nothing was evaluated."""

    def __init__(self, errors: list[AnswerError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.item or '(answers)'}: {e.message}" for e in errors))
