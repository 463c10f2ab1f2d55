"""rule_pack rows are append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).

A stored pack is what every decision made with it names by sha256; the service only ever
inserts one (``store_rule_pack``) and no column is ever updated (a clinic's active pack lives
in ``clinic.rule_pack_sha256`` and ``rule_pack_activation``), so the whole row is protected,
as ``audit_event`` is. Autogenerate cannot see triggers: tests/db/test_migrations.py checks
them. A database owner can still drop or disable them; ``screening audit verify`` and the
loader's hash check (``app.rulepack.service.verified_content``) catch what they then change.

Revision ID: 4f1e2d3c5b6a
Revises: c4e1a7b93d02
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "4f1e2d3c5b6a"
down_revision: str | Sequence[str] | None = "c4e1a7b93d02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MESSAGE = "is not allowed: stored rule packs are append-only"

_TRIGGERS = {
    "sqlite": [
        f"""CREATE TRIGGER {name} BEFORE {op_} ON rule_pack
        BEGIN SELECT RAISE(ABORT, '{op_} on rule_pack {_MESSAGE}'); END"""
        for name, op_ in (("rule_pack_no_update", "UPDATE"), ("rule_pack_no_delete", "DELETE"))
    ],
    "postgresql": [
        f"""
CREATE FUNCTION reject_rule_pack_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % {_MESSAGE}', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
""",
        "CREATE TRIGGER rule_pack_no_change BEFORE UPDATE OR DELETE ON rule_pack"
        " FOR EACH ROW EXECUTE FUNCTION reject_rule_pack_change()",
        "CREATE TRIGGER rule_pack_no_truncate BEFORE TRUNCATE ON rule_pack"
        " FOR EACH STATEMENT EXECUTE FUNCTION reject_rule_pack_change()",
    ],
}

_DROP_TRIGGERS = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS rule_pack_no_update",
        "DROP TRIGGER IF EXISTS rule_pack_no_delete",
    ],
    "postgresql": [
        "DROP TRIGGER IF EXISTS rule_pack_no_change ON rule_pack",
        "DROP TRIGGER IF EXISTS rule_pack_no_truncate ON rule_pack",
        "DROP FUNCTION IF EXISTS reject_rule_pack_change()",
    ],
}


def upgrade() -> None:
    for statement in _TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    for statement in _DROP_TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
