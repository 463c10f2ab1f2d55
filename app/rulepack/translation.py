"""A stored pack's questionnaire translations: kept beside the pack, outside its sha256.

Translations never change a decision, so they are not part of the pack's content hash. A
published pack stores its catalogues here, so the form of a clinic on that pack speaks
Spanish whatever pack the server has on disk. A pack stored without translations falls back
to the server's default catalogues: ``Catalogue.text`` shows a translation only while its
English source is unchanged, so a string the pack re-worded shows in English, never a
translation of other wording.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.db.policy_models import RulePackTranslation
from app.db.unit import savepoint
from app.engine.translations import Catalogue, Entry

Catalogues = Mapping[str, Catalogue]


def _entries(catalogue: Catalogue) -> dict[str, Any]:
    return {
        key: {"text": entry.text, "source": entry.source_sha256}
        for key, entry in sorted(catalogue.entries.items())
    }


def store(session: Session, *, sha256: str, catalogues: Catalogues, now: datetime) -> None:
    """Store the catalogues of a stored pack, for each language not stored yet (never updated).

    Appends a ``rule_pack.translations_stored`` audit event naming the languages stored.
    """
    stored = set(
        session.scalars(
            select(RulePackTranslation.language).where(RulePackTranslation.sha256 == sha256)
        )
    )
    added = []
    for language, catalogue in sorted(catalogues.items()):
        if language in stored:
            continue
        try:
            # Several worker processes start at once: one stores, the others find it stored.
            with savepoint(session):
                session.add(
                    RulePackTranslation(
                        sha256=sha256, language=language, entries=_entries(catalogue), stored_at=now
                    )
                )
                session.flush()
        except IntegrityError:
            continue
        added.append(language)
    if added:
        audit_service.append(
            session,
            action="rule_pack.translations_stored",
            actor=audit_service.Actor.system(),
            clinic_id=None,
            target_type="rule_pack",
            target_id=sha256,
            ruleset_sha256=sha256,
            detail={"languages": added},
        )


def load(session: Session, *, sha256: str) -> dict[str, Catalogue]:
    """The stored catalogues of a pack by language (empty if none were stored)."""
    rows = session.scalars(select(RulePackTranslation).where(RulePackTranslation.sha256 == sha256))
    return {
        row.language: Catalogue(
            language=row.language,
            entries={
                key: Entry(text=value["text"], source_sha256=value["source"])
                for key, value in row.entries.items()
            },
        )
        for row in rows
    }
