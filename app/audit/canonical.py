"""Canonical JSON and the hashes of the audit chain (pure: no I/O, no clock).

Canonical form (the bytes every hash in the audit trail is computed over):

- UTF-8, ``ensure_ascii=False``, no insignificant whitespace, object keys sorted;
- object keys must be strings (``{1: ...}`` and ``{"1": ...}`` would otherwise collide and
  sort differently once stored as JSON and read back);
- aware datetimes in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fractional digits, so
  a value read back from either database renders identically); naive datetimes are refused;
- dates as ``YYYY-MM-DD``; UUIDs in their hyphenated lowercase form; tuples as lists;
- NaN and infinities are refused.

Hashes are lowercase sha256 hex. The chain hash is
``sha256(bytes.fromhex(prev_hash) || dumps(fields))``; the genesis ``prev_hash`` is
:data:`GENESIS_HASH` (64 zeros). The event's ``seq`` is one of the hashed fields, so a row
moved to another position no longer matches its hash.
"""

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Protocol

from pydantic import PlainSerializer, WithJsonSchema

__all__ = [
    "GENESIS_HASH",
    "chain_hash",
    "digest",
    "dumps",
    "format_datetime",
    "screening_content",
    "screening_content_digest",
]

GENESIS_HASH = "0" * 64


def format_datetime(value: datetime) -> str:
    """Render an aware datetime as canonical UTC ``...ffffffZ``.

    Raises:
        ValueError: If ``value`` is naive.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("canonical JSON refuses naive datetimes")
    if offset:
        value = value.astimezone(UTC)
    # isoformat is C-fast; hashing a million events formats a million datetimes.
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


Timestamp = Annotated[
    datetime,
    PlainSerializer(format_datetime, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An aware datetime that API models serialise as canonical UTC ``...ffffffZ`` (as stored)."""


def _default(value: object) -> str:
    # json calls this only for values it cannot encode itself.
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"canonical JSON cannot encode {type(value).__name__}")


_CONTAINERS = (dict, list, tuple)


def _check_keys(value: object) -> None:
    # Walk containers only (json.dumps encodes dicts, lists and tuples, never other Mappings);
    # this runs once per hashed event, so scalars must cost no more than one isinstance.
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON object keys must be str, not {type(key).__name__}")
            if isinstance(item, _CONTAINERS):
                _check_keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, _CONTAINERS):
                _check_keys(item)


_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_default,
)


def dumps(obj: object, *, checked: bool = True) -> bytes:
    """Serialize ``obj`` to canonical JSON bytes.

    Args:
        obj: The value.
        checked: ``False`` skips the refusal of non-str object keys (the bytes are the
            same). Only for values whose keys are strings by construction: parsed from JSON,
            or built by the rules core from item and rule ids.

    Raises:
        TypeError: On a value with no canonical form (sets, bytes, non-str keys, ...).
        ValueError: On NaN, infinity, a naive datetime or a lone surrogate.
    """
    if checked:
        _check_keys(obj)
    return _ENCODER.encode(obj).encode("utf-8")


def digest(obj: object, *, checked: bool = True) -> str:
    """Return the sha256 hex digest of ``dumps(obj, checked=checked)``."""
    return hashlib.sha256(dumps(obj, checked=checked)).hexdigest()


def chain_hash(prev_hash: str, fields: Mapping[str, Any], *, checked: bool = True) -> str:
    """Return ``sha256(bytes.fromhex(prev_hash) || dumps(fields))`` as hex.

    Args:
        prev_hash: The previous event's hash (64 hex characters), or :data:`GENESIS_HASH`.
        fields: Every hashed field of the event, ``seq`` included, ``hash`` excluded.
        checked: ``False`` skips the object-key check of :func:`dumps` (the bytes are the
            same; only the refusal of non-str keys is skipped). The verifier passes ``False``
            for values read back from JSON columns, whose keys are always strings.

    Raises:
        ValueError: If ``prev_hash`` is not 64 hex characters.
    """
    if len(prev_hash) != 64:
        raise ValueError("prev_hash must be 64 hex characters")
    if checked:
        _check_keys(fields)
    payload = _ENCODER.encode(fields).encode("utf-8")
    return hashlib.sha256(bytes.fromhex(prev_hash) + payload).hexdigest()


def screening_content(
    *,
    clinic_id: uuid.UUID | str,
    as_of: date,
    decision: str,
    rule_pack_sha256: str,
    subject: object,
    answers: object,
    result: object,
) -> dict[str, object]:
    """Return the content of a stored screening that its audit digest covers.

    ``subject``, ``answers`` and ``result`` are the decrypted JSON values (as parsed from the
    stored plaintext), never the ciphertexts, so key rotation leaves the digest unchanged.
    """
    return {
        "clinic_id": str(clinic_id),
        "as_of": as_of.isoformat(),
        "decision": str(decision),
        "rule_pack_sha256": rule_pack_sha256,
        "subject": subject,
        "answers": answers,
        "result": result,
    }


def screening_content_digest(
    *,
    clinic_id: uuid.UUID | str,
    as_of: date,
    decision: str,
    rule_pack_sha256: str,
    subject: object,
    answers: object,
    result: object,
    checked: bool = True,
) -> str:
    """Return the ``target_sha256`` of a screening: ``digest(screening_content(...))``.

    The screening service passes this as ``target_sha256`` on every audit event about a
    screening; ``screening audit verify`` recomputes it from the decrypted stored row.
    ``checked`` as in :func:`dumps`.
    """
    return digest(
        screening_content(
            clinic_id=clinic_id,
            as_of=as_of,
            decision=decision,
            rule_pack_sha256=rule_pack_sha256,
            subject=subject,
            answers=answers,
            result=result,
        ),
        checked=checked,
    )


class ReviewColumns(Protocol):
    """The columns of a stored review that its digest covers (a ``Review`` or a row of them)."""

    id: uuid.UUID
    screening_id: uuid.UUID
    clinic_id: uuid.UUID
    reviewer_id: uuid.UUID | None
    disposition: str
    override_reason: str | None
    created_at: datetime


def review_content_digest(review: ReviewColumns, *, note: str) -> str:
    """Return the ``review_sha256`` of a stored review (in its ``review.recorded`` event).

    Covers every column a physician's sign-off shows or is ordered by: the decrypted note
    (never the ciphertext, so key rotation leaves it unchanged), the reviewer, the
    disposition, the override reason, and the time that makes it the screening's latest.
    """
    return digest(
        {
            "id": str(review.id),
            "screening_id": str(review.screening_id),
            "clinic_id": str(review.clinic_id),
            "reviewer_id": None if review.reviewer_id is None else str(review.reviewer_id),
            "disposition": review.disposition,
            "override_reason": review.override_reason,
            "note": note,
            "created_at": format_datetime(review.created_at),
        }
    )
