"""Per-clinic rule packs: each clinic's active pack, its history, pinned invitations (issue 13).

Adds ``clinic.rule_pack_sha256`` (the active pack), ``invitation.rule_pack_sha256`` (the pack
an invitation was created under), ``rule_pack_activation`` (the append-only history of
activations), ``rule_pack_translation`` (a stored pack's translations, outside its hash) and
``impact_report`` (the JSON of ``rules impact`` runs: counts and ids, never PHI).

So that an upgrade never changes a clinic's policy, this migration also pins every existing
clinic to the pack it has been using: the pack of its newest screening, else the most recently
loaded pack (what the server was running), else none (the clinic then starts on the server's
default at its first use). Open invitations are pinned to their clinic's pack. STYLE.md keeps
data fixes out of migrations; this one is the exception issue 13 asks for (README, "Design
decisions"): the pinning must happen in the same step as the schema change, or a server
started between the two would move every clinic to its own default.

Revision ID: 9daba938925b
Revises: 5b7c9d1e3f20
Create Date: 2026-12-07 02:30:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "9daba938925b"
down_revision: str | Sequence[str] | None = "5b7c9d1e3f20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_ACTOR_TYPES = ("api_key", "user", "invitation", "cli", "system")


def upgrade() -> None:
    op.create_table(
        "rule_pack_translation",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("entries", _JSON, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["rule_pack.sha256"],
            name=op.f("fk_rule_pack_translation_sha256_rule_pack"),
        ),
        sa.PrimaryKeyConstraint("sha256", "language", name=op.f("pk_rule_pack_translation")),
    )
    op.create_table(
        "impact_report",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("active_sha256", sa.String(length=64), nullable=True),
        sa.Column("candidate_sha256", sa.String(length=64), nullable=False),
        sa.Column("since_date", sa.Date(), nullable=True),
        sa.Column("until_date", sa.Date(), nullable=True),
        sa.Column("actor_id", sa.String(length=100), nullable=True),
        sa.Column("report", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_impact_report_clinic_id_clinic")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_impact_report")),
    )
    op.create_index("ix_impact_report_clinic_created", "impact_report", ["clinic_id", "created_at"])
    op.create_table(
        "rule_pack_activation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "adopted",
                "migrated",
                "published",
                "rolled_back",
                name="activation_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("from_sha256", sa.String(length=64), nullable=True),
        sa.Column("to_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "actor_type",
            sa.Enum(*_ACTOR_TYPES, name="actor_type", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("actor_id", sa.String(length=100), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_rule_pack_activation_clinic_id_clinic")
        ),
        sa.ForeignKeyConstraint(
            ["from_sha256"],
            ["rule_pack.sha256"],
            name=op.f("fk_rule_pack_activation_from_sha256_rule_pack"),
        ),
        sa.ForeignKeyConstraint(
            ["to_sha256"],
            ["rule_pack.sha256"],
            name=op.f("fk_rule_pack_activation_to_sha256_rule_pack"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_pack_activation")),
    )
    op.create_index(
        "ix_rule_pack_activation_clinic_id", "rule_pack_activation", ["clinic_id", "id"]
    )
    for table in ("clinic", "invitation"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("rule_pack_sha256", sa.String(length=64), nullable=True))
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_rule_pack_sha256_rule_pack"),
                "rule_pack",
                ["rule_pack_sha256"],
                ["sha256"],
            )
    _pin_existing_clinics()


def _pin_existing_clinics() -> None:
    """Set each clinic's active pack to the one it has been using; pin open invitations."""
    bind = op.get_bind()
    clinic = sa.table("clinic", sa.column("id", sa.Uuid()), sa.column("rule_pack_sha256"))
    screening = sa.table(
        "screening",
        sa.column("clinic_id", sa.Uuid()),
        sa.column("created_at"),
        sa.column("id", sa.Uuid()),
        sa.column("rule_pack_sha256"),
    )
    rule_pack = sa.table("rule_pack", sa.column("sha256"), sa.column("loaded_at"))
    newest_screening = (
        sa.select(screening.c.rule_pack_sha256)
        .where(screening.c.clinic_id == clinic.c.id)
        .order_by(screening.c.created_at.desc(), screening.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    bind.execute(sa.update(clinic).values(rule_pack_sha256=newest_screening))
    last_loaded = bind.scalar(
        sa.select(rule_pack.c.sha256)
        .order_by(rule_pack.c.loaded_at.desc(), rule_pack.c.sha256)
        .limit(1)
    )
    if last_loaded is not None:
        bind.execute(
            sa.update(clinic)
            .where(clinic.c.rule_pack_sha256.is_(None))
            .values(rule_pack_sha256=last_loaded)
        )
    activation = sa.table(
        "rule_pack_activation",
        sa.column("clinic_id", sa.Uuid()),
        sa.column("kind"),
        sa.column("from_sha256"),
        sa.column("to_sha256"),
        sa.column("actor_type"),
        sa.column("actor_id"),
        sa.column("activated_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    pinned = bind.execute(
        sa.select(clinic.c.id, clinic.c.rule_pack_sha256).where(
            clinic.c.rule_pack_sha256.is_not(None)
        )
    ).all()
    rows = [
        {
            "clinic_id": clinic_id,
            "kind": "migrated",
            "from_sha256": None,
            "to_sha256": sha256,
            "actor_type": "system",
            "actor_id": "migration 9daba938925b",
            "activated_at": now,
        }
        for clinic_id, sha256 in pinned
    ]
    if rows:
        bind.execute(sa.insert(activation), rows)
    invitation = sa.table(
        "invitation",
        sa.column("clinic_id", sa.Uuid()),
        sa.column("submitted_at"),
        sa.column("rule_pack_sha256"),
    )
    clinic_pack = (
        sa.select(clinic.c.rule_pack_sha256)
        .where(clinic.c.id == invitation.c.clinic_id)
        .scalar_subquery()
    )
    bind.execute(
        sa.update(invitation)
        .where(invitation.c.submitted_at.is_(None))
        .values(rule_pack_sha256=clinic_pack)
    )


def downgrade() -> None:
    for table in ("invitation", "clinic"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(
                batch_op.f(f"fk_{table}_rule_pack_sha256_rule_pack"), type_="foreignkey"
            )
            batch_op.drop_column("rule_pack_sha256")
    op.drop_index("ix_rule_pack_activation_clinic_id", table_name="rule_pack_activation")
    op.drop_table("rule_pack_activation")
    op.drop_index("ix_impact_report_clinic_created", table_name="impact_report")
    op.drop_table("impact_report")
    op.drop_table("rule_pack_translation")
