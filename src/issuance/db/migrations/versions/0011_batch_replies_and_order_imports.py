"""batch replies (whole-request replay of a batch order) and uploaded order-file imports

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batch_replies",
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("issuer_id", "request_digest", name=op.f("pk_batch_replies")),
    )
    op.create_table(
        "order_imports",
        sa.Column("import_id", sa.String(length=64), nullable=False),
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_format", sa.String(length=8), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("replayed", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("started_at", Moment, nullable=True),
        sa.Column("finished_at", Moment, nullable=True),
        sa.Column("heartbeat_at", Moment, nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("import_id", name=op.f("pk_order_imports")),
    )
    op.create_index("ix_order_imports_issuer_id", "order_imports", ["issuer_id"])
    op.create_index("ix_order_imports_status", "order_imports", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_order_imports_status", table_name="order_imports")
    op.drop_index("ix_order_imports_issuer_id", table_name="order_imports")
    op.drop_table("order_imports")
    op.drop_table("batch_replies")
