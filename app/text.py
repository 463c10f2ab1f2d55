"""Free text as the service accepts it: the ``Line`` and ``MultiLine`` types, stored in NFC.

Rejected, with a 422 naming the field: C0 and C1 control characters (U+0000-U+001F,
U+007F-U+009F), except tab and line feed in multi-line text, and the Unicode bidi
embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which can make a
reference or a note read differently from what is stored ("Trojan Source"). Accepted text
is stored in Unicode NFC, so two spellings of one name compare equal. A multi-line value's
line breaks become LF first (browsers send CRLF from a textarea).
"""

import re
import unicodedata
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

_BIDI = "\u202a-\u202e\u2066-\u2069"
_IN_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_IN_MULTI_LINE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_LINE_BREAKS = re.compile("\r\n?")


class TextError(ValueError):
    """A character free text may not hold: ``code`` and a message without the value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _check(value: str, forbidden: re.Pattern[str]) -> str:
    found = forbidden.search(value)
    if found is not None:
        character = found.group()
        is_bidi = "\u202a" <= character <= "\u202e" or "\u2066" <= character <= "\u2069"
        code = "bidi_control" if is_bidi else "control_character"
        kind = "a bidi override or isolate" if is_bidi else "a control character"
        raise TextError(code, f"must not contain {kind} (U+{ord(character):04X}).")
    return unicodedata.normalize("NFC", value)


def clean_line(value: str) -> str:
    """One line of text, NFC-normalised; TextError for a control or bidi character."""
    return _check(value, _IN_LINE)


def clean_multi_line(value: str) -> str:
    """Text that may hold line feeds and tabs, NFC-normalised; TextError as ``clean_line``."""
    return _check(_LINE_BREAKS.sub("\n", value), _IN_MULTI_LINE)


def _pydantic(clean: Callable[[str], str]) -> AfterValidator:
    def validate(value: str) -> str:
        try:
            return clean(value)
        except TextError as error:
            raise PydanticCustomError(error.code, error.message) from None

    return AfterValidator(validate)


Line = Annotated[str, _pydantic(clean_line)]
"""A reference, a name, a one-line label: no control characters, no bidi controls, NFC."""
MultiLine = Annotated[str, _pydantic(clean_multi_line)]
"""A note: as ``Line`` but with line feeds and tabs allowed (CR LF and CR become LF)."""
