"""order search indexes for the console (a million orders, keyset pages)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 15:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_orders_card_id": ["card_id"],
    "ix_orders_issuer_request_id": ["issuer_request_id"],
    "ix_orders_consumer_id": ["consumer_id"],
    "ix_orders_status_updated": ["production_status", "updated_at", "operation_id"],
    "ix_orders_due_date": ["due_date", "operation_id"],
    "ix_orders_site_status": ["production_site", "production_status"],
    "ix_orders_start_time": ["start_time"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "orders", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="orders")
