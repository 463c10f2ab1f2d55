"""CDS Hooks clients: per clinic, the EHR's JWT issuer and the JWKS URL its keys are read from.

Revision ID: 8d2e4b6f1a90
Revises: 3c9a1f7e2b64
Create Date: 2026-12-07 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "8d2e4b6f1a90"
down_revision: str | Sequence[str] | None = "3c9a1f7e2b64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cds_client",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("jwks_url", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_cds_client_clinic_id_clinic")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_client")),
        sa.UniqueConstraint("issuer", name=op.f("uq_cds_client_issuer")),
    )
    with op.batch_alter_table("cds_client", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cds_client_clinic_id"), ["clinic_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cds_client", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cds_client_clinic_id"))
    op.drop_table("cds_client")
