"""Screening source `fhir`: screenings received as FHIR QuestionnaireResponses.

The `source` column is a string with a CHECK constraint (no native enum): the constraint is
replaced by one that also allows `fhir`. The column is already 4 characters wide. Downgrading
fails while screenings with source `fhir` exist: migrations change schema only, and such rows
cannot be stored under the old constraint without changing what they say.

Revision ID: 3c9a1f7e2b64
Revises: 15e6c48434d0
Create Date: 2026-12-07 02:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c9a1f7e2b64"
down_revision: str | Sequence[str] | None = "15e6c48434d0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ck_screening_source"


def _replace(values: tuple[str, ...]) -> None:
    listed = ", ".join(f"'{value}'" for value in values)
    with op.batch_alter_table("screening", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(_NAME), type_="check")
        batch_op.create_check_constraint(op.f(_NAME), f"source IN ({listed})")


def upgrade() -> None:
    _replace(("api", "form", "fhir"))


def downgrade() -> None:
    _replace(("api", "form"))
