"""Three-valued (Kleene) truth: true, false and unknown.

Implements DESIGN.md "Three-valued logic". Truth tables (T true, F false, U unknown):

    any_of  | T  F  U        all_of  | T  F  U        not_
    --------+---------       --------+---------       -----
       T    | T  T  T           T    | T  F  U        T -> F
       F    | T  F  U           F    | F  F  F        F -> T
       U    | T  U  U           U    | U  F  U        U -> U

`any_of` is true if any part is true, false if all are false, else unknown; `all_of` is false
if any part is false, true if all are true, else unknown. Unknown can therefore only be
resolved by an answer, never by the absence of one.
"""

from collections.abc import Iterable
from enum import Enum


class Truth(Enum):
    """A truth value of Kleene's strong three-valued logic."""

    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"


TRUE = Truth.TRUE
FALSE = Truth.FALSE
UNKNOWN = Truth.UNKNOWN


def any_of(values: Iterable[Truth]) -> Truth:
    """Kleene disjunction: true if any is true, false if all are false, else unknown."""
    result = FALSE
    for value in values:
        if value is TRUE:
            return TRUE
        if value is UNKNOWN:
            result = UNKNOWN
    return result


def all_of(values: Iterable[Truth]) -> Truth:
    """Kleene conjunction: false if any is false, true if all are true, else unknown."""
    result = TRUE
    for value in values:
        if value is FALSE:
            return FALSE
        if value is UNKNOWN:
            result = UNKNOWN
    return result


def not_(value: Truth) -> Truth:
    """Kleene negation: swaps true and false; unknown stays unknown."""
    if value is TRUE:
        return FALSE
    if value is FALSE:
        return TRUE
    return UNKNOWN
