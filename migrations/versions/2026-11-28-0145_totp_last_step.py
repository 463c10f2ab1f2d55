"""TOTP replay guard: remember each user's last accepted authenticator time step.

A code is accepted only for a time step later than the stored one, so a code seen over a
shoulder or in a proxy log cannot be used again within its 90-second window.

Revision ID: 15e6c48434d0
Revises: 7b1e4c2a9d05
Create Date: 2026-11-28 01:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "15e6c48434d0"
down_revision: str | Sequence[str] | None = "7b1e4c2a9d05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
