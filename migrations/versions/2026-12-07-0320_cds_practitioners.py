"""CDS clients map EHR users (context.userId) to physician accounts, for override feedback.

Revision ID: 5b7c9d1e3f20
Revises: afe6cb8ffc94
Create Date: 2026-12-07 03:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5b7c9d1e3f20"
down_revision: str | Sequence[str] | None = "afe6cb8ffc94"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cds_client", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "practitioners",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("cds_client", schema=None) as batch_op:
        batch_op.drop_column("practitioners")
