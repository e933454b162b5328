"""drop indexes that prefix others: ix_orders_production_status, ix_events_issuer_id

`ix_orders_status_updated` (production_status, updated_at, operation_id) serves every look-up
by production status, and `ix_events_feed` (issuer_id, txid, event_id) and the unique
(issuer_id, card_id, sequence) every look-up by issuer: each of the two was one more index to
keep up at every order written and every status change, for no query of its own.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 14:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_orders_production_status", table_name="orders")
    op.drop_index("ix_events_issuer_id", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_issuer_id", "events", ["issuer_id"])
    op.create_index("ix_orders_production_status", "orders", ["production_status"])
