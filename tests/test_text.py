"""Free text (app/text.py): control and bidi characters are refused, accepted text is NFC."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from app.text import Line, MultiLine

_CONTROLS = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]}
_BIDI = {chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


class _Texts(BaseModel):
    line: Line = ""
    multi: MultiLine = ""


# Text that often holds the characters in question, and decomposed accents.
_PIECE = st.one_of(
    st.characters(),
    st.sampled_from(sorted(_CONTROLS | _BIDI)),
    st.sampled_from(["e\u0301", "A\u030a", "\r\n", "\n", "\t", "\u00e9"]),
)
_TEXT = st.lists(_PIECE, max_size=40).map("".join)


@given(_TEXT)
def test_an_accepted_line_is_nfc_and_free_of_control_and_bidi_characters(value: str) -> None:
    try:
        accepted = _Texts(line=value).line
    except ValidationError as error:
        (problem,) = error.errors()
        assert problem["type"] in {"control_character", "bidi_control"}
        assert problem["loc"] == ("line",)
        assert set(value) & (_CONTROLS | _BIDI)
        return
    assert unicodedata.is_normalized("NFC", accepted)
    assert not set(accepted) & (_CONTROLS | _BIDI)
    assert accepted == unicodedata.normalize("NFC", value)


@given(_TEXT)
def test_an_accepted_note_is_nfc_and_holds_only_line_feeds_and_tabs(value: str) -> None:
    try:
        accepted = _Texts(multi=value).multi
    except ValidationError as error:
        (problem,) = error.errors()
        assert problem["type"] in {"control_character", "bidi_control"}
        return
    assert unicodedata.is_normalized("NFC", accepted)
    assert not set(accepted) & ((_CONTROLS - {"\n", "\t"}) | _BIDI)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("MRN-1\u202e7", "bidi_control"),
        ("MRN\u2066-1", "bidi_control"),
        ("MRN\x00", "control_character"),
        ("MRN\x1b[31m", "control_character"),
        ("MRN\x85", "control_character"),
        ("MRN\n1", "control_character"),
        ("MRN\t1", "control_character"),
    ],
)
def test_a_line_refuses_each_kind_without_echoing_it(value: str, code: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _Texts(line=value)
    (problem,) = raised.value.errors(include_input=False)
    assert problem["type"] == code
    assert "U+" in problem["msg"]
    assert "MRN" not in problem["msg"]


def test_a_note_keeps_line_feeds_and_tabs_and_turns_crlf_into_lf() -> None:
    assert _Texts(multi="BP 132/84\r\n\trechecked\rok").multi == "BP 132/84\n\trechecked\nok"


def test_a_note_still_refuses_bidi_and_other_controls() -> None:
    for value in ("ok\u202e", "ok\x07", "ok\x0c"):
        with pytest.raises(ValidationError):
            _Texts(multi=value)
