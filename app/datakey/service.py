"""rotate_batch(): re-encrypt one batch of rows not on the newest data key (``keys rotate``).

Each batch runs in the caller's transaction and records one audit event, so an interrupted
rotation leaves every row either wholly on its old key or wholly on the new one (a row's
ciphertext columns and its key id change in one UPDATE) and a re-run simply continues.
The plaintext is unchanged, so audit content digests stay valid.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app import crypto
from app.audit import service as audit_service
from app.db.models import Invitation, Review, Screening, UserAccount

__all__ = ["TABLES", "RowError", "count_pending", "rotate_batch"]


@dataclass(frozen=True, slots=True)
class _Encrypted:
    """A table's encrypted columns and the column naming the key they are under."""

    model: type[Screening] | type[Review] | type[Invitation] | type[UserAccount]
    key_column: str
    columns: tuple[str, ...]

    @property
    def key(self) -> InstrumentedAttribute[Any]:
        """The key id column."""
        column: InstrumentedAttribute[Any] = getattr(self.model, self.key_column)
        return column


# Every encrypted column; all columns of a row share the row's key id. Nullable ciphertexts
# (a draft not yet saved, a user without a second factor) are skipped while empty.
_ENCRYPTED = {
    "screening": _Encrypted(Screening, "key_id", ("subject_ct", "answers_ct", "result_ct")),
    "review": _Encrypted(Review, "key_id", ("note_ct",)),
    "invitation": _Encrypted(Invitation, "key_id", ("subject_ct", "draft_ct")),
    "user_account": _Encrypted(UserAccount, "totp_key_id", ("totp_secret_ct",)),
}
TABLES = tuple(_ENCRYPTED)


class RowError(Exception):
    """A row that cannot be re-encrypted; the message names the row, never its content."""

    def __init__(self, table: str, row_id: str, reason: str) -> None:
        super().__init__(f"{table} {row_id}: {reason}")
        self.table = table
        self.row_id = row_id


def count_pending(session: Session, *, keyring: crypto.KeyRing, table: str) -> int:
    """Count rows of ``table`` not yet on ``keyring.current_kid``."""
    spec = _ENCRYPTED[table]
    query = select(func.count()).select_from(spec.model).where(_pending(spec, keyring))
    return session.scalar(query) or 0


def _pending(spec: _Encrypted, keyring: crypto.KeyRing) -> Any:
    return spec.key.is_not(None) & (spec.key != keyring.current_kid)


def _reencrypt_rows(
    session: Session, spec: _Encrypted, *, keyring: crypto.KeyRing, table: str, limit: int
) -> int:
    rows: Sequence[Any] = session.scalars(
        select(spec.model)
        .where(_pending(spec, keyring))
        .order_by(spec.model.id)
        .limit(limit)
        .with_for_update()
    ).all()
    for row in rows:
        key_id = getattr(row, spec.key_column)
        try:
            for column in spec.columns:
                ciphertext = getattr(row, column)
                if ciphertext is None:
                    continue
                aad = crypto.field_aad(table, column, row.id)
                setattr(row, column, keyring.reencrypt(key_id, ciphertext, aad)[1])
        except crypto.DecryptError as error:
            raise RowError(table, str(row.id), str(error)) from None
        setattr(row, spec.key_column, keyring.current_kid)
    return len(rows)


def rotate_batch(
    session: Session,
    *,
    keyring: crypto.KeyRing,
    table: str,
    batch_size: int,
    actor: audit_service.Actor,
) -> int:
    """Re-encrypt up to ``batch_size`` rows of ``table`` under the newest key (never commits).

    Args:
        session: The batch's transaction.
        keyring: Must hold every key the rows use; its last key is the target.
        table: One of `TABLES`.
        batch_size: Rows per batch.
        actor: Who rotates (the CLI's ``--actor``).

    Returns:
        The number of rows re-encrypted; 0 when the table is fully rotated.

    Raises:
        RowError: If a row's ciphertext cannot be decrypted with the configured keys.
    """
    spec = _ENCRYPTED[table]
    count = _reencrypt_rows(session, spec, keyring=keyring, table=table, limit=batch_size)
    if count:
        audit_service.append(
            session,
            action="data_key.rotated",
            actor=actor,
            clinic_id=None,
            target_type=table,
            detail={"rows": count, "key_id": keyring.current_kid},
        )
        session.flush()
    return count
