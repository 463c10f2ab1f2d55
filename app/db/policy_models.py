"""Per-clinic policy tables (issue 13): pack activations, stored translations, impact reports."""

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, PortableJSON, str_enum
from app.db.models import SHA256_HEX, ActorType


class ActivationKind(StrEnum):
    """How a pack became a clinic's active pack."""

    adopted = "adopted"  # the server's default, on the clinic's first use
    migrated = "migrated"  # the pack the clinic was using when per-clinic packs arrived
    published = "published"
    rolled_back = "rolled_back"


class RulePackActivation(Base):
    """One change of a clinic's active pack (append-only: the clinic's pack history)."""

    __tablename__ = "rule_pack_activation"
    __table_args__ = (Index("ix_rule_pack_activation_clinic_id", "clinic_id", "id"),)

    # Ordered: several activations may share a timestamp (a clock fixed in tests, a fast CLI).
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"))
    kind: Mapped[ActivationKind] = mapped_column(str_enum(ActivationKind, "activation_kind"))
    from_sha256: Mapped[str | None] = mapped_column(ForeignKey("rule_pack.sha256"))
    to_sha256: Mapped[str] = mapped_column(ForeignKey("rule_pack.sha256"))
    actor_type: Mapped[ActorType] = mapped_column(str_enum(ActorType, "actor_type"))
    actor_id: Mapped[str | None] = mapped_column(String(100))
    activated_at: Mapped[datetime]


class RulePackTranslation(Base):
    """A stored pack's questionnaire translations in one language (not part of its sha256)."""

    __tablename__ = "rule_pack_translation"

    sha256: Mapped[str] = mapped_column(ForeignKey("rule_pack.sha256"), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    entries: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    stored_at: Mapped[datetime]


class ImpactReport(Base):
    """The result of one ``rules impact`` run: counts and screening ids only, never PHI."""

    __tablename__ = "impact_report"
    __table_args__ = (Index("ix_impact_report_clinic_created", "clinic_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic.id"))
    active_sha256: Mapped[str | None] = mapped_column(String(SHA256_HEX))
    candidate_sha256: Mapped[str] = mapped_column(String(SHA256_HEX))
    since_date: Mapped[date | None] = mapped_column(Date)
    until_date: Mapped[date | None] = mapped_column(Date)
    actor_id: Mapped[str | None] = mapped_column(String(100))
    report: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    created_at: Mapped[datetime]
