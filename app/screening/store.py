"""A stored screening read back: ``ScreeningContent`` (one decrypt, one digest) and its ETag.

Every reader of stored screenings goes through here: the API's read and idempotent replay,
the listing, the review queue and detail, explain, and the audit verification (through
``content_digest``). The digest is the ``target_sha256`` of every audit event about the
screening: ``canonical.screening_content_digest`` over the decrypted values, never the
ciphertexts, so key rotation leaves it unchanged.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import canonical
from app.crypto import KeyRing, field_aad
from app.db.models import Review, Screening
from app.errors import NotFound

PHI_COLUMNS = ("subject_ct", "answers_ct", "result_ct")


class StoredScreening(Protocol):
    """The stored columns of a screening (an ORM object or a Core row)."""

    @property
    def id(self) -> uuid.UUID: ...  # noqa: D102
    @property
    def clinic_id(self) -> uuid.UUID: ...  # noqa: D102
    @property
    def as_of_date(self) -> date: ...  # noqa: D102
    @property
    def decision(self) -> str: ...  # noqa: D102
    @property
    def rule_pack_sha256(self) -> str: ...  # noqa: D102
    @property
    def key_id(self) -> str: ...  # noqa: D102
    @property
    def subject_ct(self) -> bytes: ...  # noqa: D102
    @property
    def answers_ct(self) -> bytes: ...  # noqa: D102
    @property
    def result_ct(self) -> bytes: ...  # noqa: D102


def decrypt_bytes(keyring: KeyRing, row: StoredScreening, column: str) -> bytes:
    """The plaintext JSON bytes of one PHI column (the row id is the associated data).

    Raises:
        crypto.DecryptError: If the ciphertext does not authenticate.
    """
    aad = field_aad("screening", column, row.id)
    return keyring.decrypt(row.key_id, bytes(getattr(row, column)), aad)


@dataclass(frozen=True, slots=True)
class ScreeningContent:
    """A stored screening's decrypted content: what its audit digest covers."""

    clinic_id: uuid.UUID
    as_of: date
    decision: str
    rule_pack_sha256: str
    subject: dict[str, Any]
    answers: dict[str, Any]
    result: dict[str, Any]

    @classmethod
    def decrypt(cls, keyring: KeyRing, row: StoredScreening) -> "ScreeningContent":
        """Decrypt a stored screening.

        Raises:
            crypto.DecryptError: If any of its ciphertexts does not authenticate.
            ValueError: If a decrypted value is not JSON.
        """
        subject, answers, result = (
            json.loads(decrypt_bytes(keyring, row, column)) for column in PHI_COLUMNS
        )
        return cls(
            row.clinic_id,
            row.as_of_date,
            str(row.decision),
            row.rule_pack_sha256,
            subject,
            answers,
            result,
        )

    def digest(self, *, checked: bool = True) -> str:
        """The content digest (``target_sha256``); ``checked`` as in ``canonical.dumps``."""
        return canonical.screening_content_digest(
            clinic_id=self.clinic_id,
            as_of=self.as_of,
            decision=self.decision,
            rule_pack_sha256=self.rule_pack_sha256,
            subject=self.subject,
            answers=self.answers,
            result=self.result,
            checked=checked,
        )

    def to_dict(self) -> dict[str, object]:
        """The canonical content dict (``canonical.screening_content``)."""
        return canonical.screening_content(
            clinic_id=self.clinic_id,
            as_of=self.as_of,
            decision=self.decision,
            rule_pack_sha256=self.rule_pack_sha256,
            subject=self.subject,
            answers=self.answers,
            result=self.result,
        )


def content_digest(keyring: KeyRing, row: StoredScreening) -> tuple[str, dict[str, Any]]:
    """Decrypt a stored screening; return its content digest and its result (``audit verify``).

    The result comes along so that verify checks the flag rows against it without decrypting
    the screening a second time.
    """
    content = ScreeningContent.decrypt(keyring, row)
    return content.digest(), content.result


def screening_row(session: Session, *, clinic_id: uuid.UUID, screening_id: uuid.UUID) -> Screening:
    """One of the clinic's screenings; NotFound for any other id."""
    row = session.scalars(
        select(Screening).where(Screening.id == screening_id, Screening.clinic_id == clinic_id)
    ).one_or_none()
    if row is None:
        raise NotFound("No screening with this id.")
    return row


def latest_review(session: Session, screening_id: uuid.UUID) -> Review | None:
    """The screening's latest review, if any."""
    return session.scalars(
        select(Review)
        .where(Review.screening_id == screening_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(1)
    ).first()


def etag(screening_id: uuid.UUID, review_id: uuid.UUID | None) -> str:
    """The strong ETag of a screening's reviewable state: its id and latest review id."""
    raw = f"{screening_id}:{review_id or '-'}".encode()
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


def current_etag(session: Session, *, clinic_id: uuid.UUID, screening_id: uuid.UUID) -> str:
    """The ETag of one of the clinic's screenings; NotFound for any other."""
    screening_row(session, clinic_id=clinic_id, screening_id=screening_id)
    latest = latest_review(session, screening_id)
    return etag(screening_id, None if latest is None else latest.id)


def bodies(session: Session, keyring: KeyRing, rows: list[Screening]) -> list[dict[str, Any]]:
    """The API bodies of stored screenings: the stored result with the latest review."""
    reviews = latest_reviews(session, [row.id for row in rows])
    bodies = []
    for row in rows:
        body: dict[str, Any] = json.loads(decrypt_bytes(keyring, row, "result_ct"))
        body["review"] = reviews.get(row.id)
        bodies.append(body)
    return bodies


def latest_reviews(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, str]]:
    """The latest review of each screening that has one: ``{"disposition", "created_at"}``."""
    if not ids:
        return {}
    rows = session.execute(
        select(Review.screening_id, Review.disposition, Review.created_at)
        .where(Review.screening_id.in_(ids))
        .order_by(Review.created_at)
    )
    return {
        screening_id: {
            "disposition": disposition,
            "created_at": canonical.format_datetime(created_at),
        }
        for screening_id, disposition, created_at in rows
    }


def reference_number(screening_id: uuid.UUID) -> str:
    """The short reference a patient can read out on the phone (from the screening id)."""
    digits = screening_id.hex[:8].upper()
    return f"{digits[:4]}-{digits[4:]}"
