"""workflow: hold, shipment, SLA standing, stock, operators, sandbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:21:33.208790
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("operator_id", name=op.f("pk_operators")),
    )
    op.create_table(
        "sandbox_clock",
        sa.Column("clock_id", sa.Integer(), nullable=False),
        sa.Column("offset_seconds", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("clock_id", name=op.f("pk_sandbox_clock")),
    )
    op.create_table(
        "sandbox_scenarios",
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("card_id", sa.String(length=48), nullable=False),
        sa.Column("scenario", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_id", "card_id", name=op.f("pk_sandbox_scenarios")),
    )
    op.create_table(
        "stock_levels",
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("stock_item_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_id", "stock_item_id", name=op.f("pk_stock_levels")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cancellable_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("sla_standing", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("hold", sa.String(length=16), server_default="NONE", nullable=False)
        )
        batch_op.add_column(sa.Column("shipment", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("shipment_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("priority", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("materials", sa.JSON(), server_default="[]", nullable=False))
        batch_op.create_index("ix_orders_updated_at", ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_updated_at")
        batch_op.drop_column("materials")
        batch_op.drop_column("priority")
        batch_op.drop_column("shipment_status")
        batch_op.drop_column("shipment")
        batch_op.drop_column("hold")
        batch_op.drop_column("sla_standing")
        batch_op.drop_column("cancellable_until")

    op.drop_table("stock_levels")
    op.drop_table("sandbox_scenarios")
    op.drop_table("sandbox_clock")
    op.drop_table("operators")
