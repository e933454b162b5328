"""endpoints disabled by 410 Gone

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 13:26:13.970631
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "endpoint_states",
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("endpoint_id", sa.String(length=64), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("issuer_id", "endpoint_id", name=op.f("pk_endpoint_states")),
    )


def downgrade() -> None:
    op.drop_table("endpoint_states")
