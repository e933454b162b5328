"""change feed: events.txid (commit order on PostgreSQL) and cards.last_txid

Existing rows get 0: they were all committed before this migration, so they sort first, in
event_id order. Run it with the writers stopped, or an old writer's events would get 0 too and
could sort behind a cursor already handed out.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_txid", sa.BigInteger(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("txid", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_index("ix_events_feed", ["issuer_id", "txid", "event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_feed")
        batch_op.drop_column("txid")
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_column("last_txid")
