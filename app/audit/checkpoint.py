"""Signed checkpoints of the audit chain head: detect a truncated tail or a rewritten chain.

A hash chain alone cannot show that its last events were deleted (with the head moved back)
or that a database owner recomputed every hash. A checkpoint is the head's ``seq`` and
``hash`` at a moment, signed with HMAC-SHA256 under ``SCREENING_AUDIT_KEY``, a key that is
never stored in the database. The operator keeps checkpoints elsewhere; ``screening audit
verify --checkpoint FILE`` then requires the chain to reach that ``seq`` with that ``hash``.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import canonical
from app.db.models import AuditHead

__all__ = ["Checkpoint", "CheckpointError", "make_checkpoint"]

# Domain separation: a MAC over this structure can never be confused with another use of
# the same key.
_KIND = "screening-audit-checkpoint/v1"


class CheckpointError(ValueError):
    """A checkpoint file is malformed or its signature does not verify."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that the chain had ``seq`` events ending in ``hash`` at ``time``."""

    seq: int
    hash: str
    time: str
    mac: str

    @staticmethod
    def _signed_bytes(seq: int, head_hash: str, time: str) -> bytes:
        return canonical.dumps({"kind": _KIND, "seq": seq, "hash": head_hash, "time": time})

    @classmethod
    def sign(cls, *, seq: int, head_hash: str, time: datetime, key: bytes) -> "Checkpoint":
        """Build and sign a checkpoint of ``(seq, head_hash)`` taken at ``time``."""
        text = canonical.format_datetime(time)
        mac = hmac.new(key, cls._signed_bytes(seq, head_hash, text), hashlib.sha256).hexdigest()
        return cls(seq=seq, hash=head_hash, time=text, mac=mac)

    def is_authentic(self, key: bytes) -> bool:
        """Whether the MAC verifies under ``key`` (constant-time comparison)."""
        expected = hmac.new(
            key, self._signed_bytes(self.seq, self.hash, self.time), hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, self.mac)

    def to_json(self) -> str:
        """Render as one line of JSON (what ``screening audit checkpoint`` prints)."""
        return json.dumps(
            {"kind": _KIND, "seq": self.seq, "hash": self.hash, "time": self.time, "mac": self.mac},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> "Checkpoint":
        """Parse what :meth:`to_json` printed.

        Raises:
            CheckpointError: If the text is not a checkpoint.
        """
        try:
            data = json.loads(text)
        except ValueError:
            raise CheckpointError("checkpoint is not valid JSON") from None
        if not isinstance(data, dict) or data.get("kind") != _KIND:
            raise CheckpointError(f"not a {_KIND} document")
        seq, head_hash, time, mac = (data.get(k) for k in ("seq", "hash", "time", "mac"))
        if not (isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0):
            raise CheckpointError("checkpoint seq must be a non-negative integer")
        if not all(isinstance(v, str) for v in (head_hash, time, mac)):
            raise CheckpointError("checkpoint hash, time and mac must be strings")
        return cls(seq=seq, hash=str(head_hash), time=str(time), mac=str(mac))


def make_checkpoint(session: Session, *, key: bytes, now: datetime | None = None) -> Checkpoint:
    """Sign the current chain head (committed state as seen by ``session``).

    Args:
        session: Any session; only ``audit_head`` is read.
        key: The raw HMAC key (``SCREENING_AUDIT_KEY`` decoded from base64).
        now: The checkpoint time; defaults to the current UTC time.
    """
    head_seq, head_hash = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
    ).one()
    return Checkpoint.sign(
        seq=head_seq, head_hash=head_hash, time=now or datetime.now(UTC), key=key
    )
