"""Idempotency keys of ``POST /v1/screenings``: checked, stored as a digest, looked up.

A key belongs to one clinic and stands for one request body (its ``fingerprint``); a retry
with the same key and body replays the stored screening. Only the key's sha256 is stored:
clients do put patient references into their keys.
"""

import re
import uuid
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, insert, select

from app.audit import canonical
from app.db.models import IdempotencyKey
from app.db.prepared import Prepared
from app.errors import BadRequest, ProblemItem

_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
_TABLE = cast(Table, IdempotencyKey.__table__)
_INSERT = Prepared(insert(_TABLE), [column.name for column in _TABLE.c])
_EARLIER_REQUEST = Prepared(
    select(IdempotencyKey.request_sha256, IdempotencyKey.screening_id).where(
        IdempotencyKey.clinic_id == bindparam("clinic_id"), IdempotencyKey.key == bindparam("key")
    )
)


class EarlierRequest(NamedTuple):
    """What an Idempotency-Key already stands for."""

    request_sha256: str
    screening_id: uuid.UUID


def stored_form(key: str) -> str:
    """The digest stored for a client's ``Idempotency-Key``; BadRequest if it is malformed."""
    if not _PATTERN.fullmatch(key):
        raise BadRequest(
            "Idempotency-Key must be 1-255 printable ASCII characters.",
            errors=[
                ProblemItem("invalid_idempotency_key", "Use a UUID.", parameter="Idempotency-Key")
            ],
        )
    return canonical.digest(key)


def fingerprint(body: dict[str, Any]) -> str:
    """The sha256 of the request body a key is bound to."""
    # Unchecked: the body was parsed from JSON, so its object keys are strings.
    return canonical.digest(body, checked=False)


def key_row(clinic_id: uuid.UUID, key: str | None, body: dict[str, Any]) -> dict[str, Any] | None:
    """The row storing ``key`` for this request ``body``, or None without a key.

    Raises BadRequest if the key is malformed. Only the key's digest and the body's
    fingerprint are kept.
    """
    if key is None:
        return None
    return {"clinic_id": clinic_id, "key": stored_form(key), "request_sha256": fingerprint(body)}


def earlier_request(
    connection: Connection, clinic_id: uuid.UUID, key: str
) -> EarlierRequest | None:
    """The ``request_sha256`` and ``screening_id`` stored under this (stored-form) key."""
    found = _EARLIER_REQUEST.execute(connection, {"clinic_id": clinic_id, "key": key})
    return None if found is None else EarlierRequest(*found)


def insert_key(connection: Connection, row: dict[str, Any]) -> None:
    """Store a key row (``clinic_id``, ``key``, ``request_sha256``, ``screening_id``, ...)."""
    _INSERT.execute(connection, row)
