"""production batch in a column of its own; the bureau's report events (re-import is a no-op)

Batching used to write the batch file name into `input_file_name`, overwriting the name of the
issuer's order file (`issuance orders import`). Orders already batched (at CARD_PROD_READY or
later in production) move that name to `production_batch`; their issuer file name was already
lost, so `input_file_name` becomes empty for them. `bureau_events` records each applied line of
the bureau's production report, so the same report imported again changes nothing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)
BATCHED = ("CARD_PROD_READY", "CARD_PROD_ONGOING", "CARD_PROD_DONE", "CARD_SHIPPED")


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("production_batch", sa.String(length=255), nullable=True))
        batch_op.create_index(
            "ix_orders_production_batch", ["production_batch", "card_id"], unique=False
        )
    op.create_table(
        "bureau_events",
        sa.Column("bureau_event_id", BigId, autoincrement=True, nullable=False),
        sa.Column("operation_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", Moment, nullable=False),
        sa.Column("recorded_at", Moment, nullable=False),
        sa.Column("report", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["orders.operation_id"],
            name=op.f("fk_bureau_events_operation_id_orders"),
        ),
        sa.PrimaryKeyConstraint("bureau_event_id", name=op.f("pk_bureau_events")),
        sa.UniqueConstraint(
            "operation_id",
            "event",
            "occurred_at",
            name=op.f("uq_bureau_events_operation_id_event_occurred_at"),
        ),
    )
    op.execute(
        sa.text(
            "UPDATE orders SET production_batch = input_file_name, input_file_name = NULL"
            " WHERE production_status IN :statuses AND input_file_name IS NOT NULL"
        ).bindparams(sa.bindparam("statuses", BATCHED, expanding=True))
    )


def downgrade() -> None:
    op.drop_table("bureau_events")
    op.execute(
        sa.text(
            "UPDATE orders SET input_file_name = production_batch"
            " WHERE production_batch IS NOT NULL"
        )
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_production_batch")
        batch_op.drop_column("production_batch")
