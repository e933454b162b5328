"""BULK containers: their tracking, and each order's container

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "containers",
        sa.Column("issuer_id", sa.String(10), nullable=False),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=True),
        sa.Column("tracking_number", sa.String(64), nullable=True),
        sa.Column("tracking_url", sa.String(2048), nullable=True),
        sa.Column("message", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["issuers.issuer_id"], name="fk_containers_issuer_id_issuers"
        ),
        sa.PrimaryKeyConstraint("issuer_id", "group_id", name="pk_containers"),
    )
    op.create_index("ix_containers_issuer_status", "containers", ["issuer_id", "status"])
    op.create_index("ix_containers_issuer_order", "containers", ["issuer_id", "order_id"])
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("container_group_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("container", sa.JSON(), nullable=True))
        batch.create_index("ix_orders_container", ["issuer_id", "container_group_id"])


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_container")
        batch.drop_column("container")
        batch.drop_column("container_group_id")
    op.drop_index("ix_containers_issuer_order", table_name="containers")
    op.drop_index("ix_containers_issuer_status", table_name="containers")
    op.drop_table("containers")
