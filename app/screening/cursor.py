"""The opaque keyset cursor of the screening list: the position after a screening."""

import base64
import binascii
import json
import uuid
from datetime import datetime

from app.audit import canonical
from app.errors import ProblemItem, ValidationFailed


def encode(created_at: datetime, screening_id: uuid.UUID) -> str:
    """Return the opaque cursor for the position after this screening."""
    raw = json.dumps(
        {"t": canonical.format_datetime(created_at), "i": screening_id.hex}, separators=(",", ":")
    ).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Parse a cursor from :func:`encode`; ValidationFailed if it is not one."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(raw["t"]), uuid.UUID(hex=raw["i"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValidationFailed(
            "The cursor is not valid.",
            errors=[
                ProblemItem(
                    "invalid_cursor", "Pass back a next_cursor unchanged.", parameter="cursor"
                )
            ],
        ) from None
