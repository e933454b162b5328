"""orders keep the digest of an imported line's JWE

A re-imported or resumed order file answers a line already placed as a replay without
decrypting it. That shortcut compared the line's request without its card data, so a line
reusing a key with other card data was answered REPLAYED. The SHA-256 of the JWE the line
carried is now stored with the order (NULL for orders placed through the API, and for files
imported before this revision: their lines are decrypted and checked in full on a re-import).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("encrypted_data_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:  # SQLite rebuilds the table
        batch.drop_column("encrypted_data_digest")
