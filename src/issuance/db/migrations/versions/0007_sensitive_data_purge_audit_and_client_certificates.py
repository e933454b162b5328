"""sensitive data purge, the append-only audit log, client certificate binding

Orders already past their use of the sensitive data (done, shipped, failed, cancelled) get
`purgeable_since` = their last change, so the worker's retention sweep destroys their data.
The audit log refuses UPDATE and DELETE by trigger on both databases (and TRUNCATE on
PostgreSQL).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)
PURGEABLE = ("CARD_PROD_DONE", "CARD_SHIPPED", "DATA_EXCEPTION", "CARD_PROD_CANCELED")

POSTGRESQL_GUARD = [
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only';
    END $$""",
    """CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
]
SQLITE_GUARD = [
    f"""CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"""
    for verb in ("UPDATE", "DELETE")
]


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purgeable_since", Moment, nullable=True))
        batch_op.add_column(sa.Column("sensitive_data_purged_at", Moment, nullable=True))
        batch_op.create_index("ix_orders_purgeable_since", ["purgeable_since"], unique=False)
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("certificate_fingerprint", sa.String(length=64), nullable=True)
        )
    op.execute(
        sa.text(
            "UPDATE orders SET purgeable_since = updated_at"
            " WHERE production_status IN :statuses AND sensitive_data IS NOT NULL"
        ).bindparams(sa.bindparam("statuses", PURGEABLE, expanding=True))
    )
    op.create_table(
        "audit_log",
        sa.Column("audit_id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_issuer_id", sa.String(length=10), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("issuer_id", sa.String(length=10), nullable=True),
        sa.Column("card_id", sa.String(length=48), nullable=True),
        sa.Column("operation_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_card", "audit_log", ["issuer_id", "card_id", "audit_id"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor_id", "audit_id"])
    guard = POSTGRESQL_GUARD if op.get_bind().dialect.name == "postgresql" else SQLITE_GUARD
    for statement in guard:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
    op.drop_index("ix_audit_log_card", table_name="audit_log")
    op.drop_table("audit_log")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_log_append_only()")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("certificate_fingerprint")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_purgeable_since")
        batch_op.drop_column("sensitive_data_purged_at")
        batch_op.drop_column("purgeable_since")
