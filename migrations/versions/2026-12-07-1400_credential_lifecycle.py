"""Credential lifecycle (issue 15): an API key's expiry and when it was last used.

``api_key.expires_at`` (None: never; a rotated key gets now + grace) and
``api_key.last_used_at`` (refreshed when a server looks the key up, at most every few seconds
per process). Users already have ``disabled_at`` and keys ``revoked_at``.

Revision ID: c4e1a7b93d02
Revises: 9daba938925b
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "c4e1a7b93d02"
down_revision: str | Sequence[str] | None = "9daba938925b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
