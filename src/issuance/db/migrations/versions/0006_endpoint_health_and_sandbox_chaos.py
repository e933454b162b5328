"""endpoint health, endpoint events, sandbox chaos; claims walk pending deliveries in order

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 14:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_index("ix_deliveries_pending", "deliveries", ["status", "delivery_id"])
    op.create_table(
        "endpoint_health",
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("endpoint_id", sa.String(length=64), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", Moment, nullable=True),
        sa.Column("warned_at", Moment, nullable=True),
        sa.Column("last_success_at", Moment, nullable=True),
        sa.Column("last_failure_at", Moment, nullable=True),
        sa.PrimaryKeyConstraint("issuer_id", "endpoint_id", name=op.f("pk_endpoint_health")),
    )
    op.create_table(
        "endpoint_events",
        sa.Column("endpoint_event_id", BigId, autoincrement=True, nullable=False),
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("endpoint_id", sa.String(length=64), nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_event_id", name=op.f("pk_endpoint_events")),
    )
    op.create_table(
        "sandbox_chaos",
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("endpoint_id", sa.String(length=64), nullable=False),
        sa.Column("duplicate", sa.Double(), nullable=False),
        sa.Column("delay_seconds", sa.Double(), nullable=False),
        sa.Column("reorder", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_id", "endpoint_id", name=op.f("pk_sandbox_chaos")),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_pending", table_name="deliveries")
    op.drop_table("sandbox_chaos")
    op.drop_table("endpoint_events")
    op.drop_table("endpoint_health")
