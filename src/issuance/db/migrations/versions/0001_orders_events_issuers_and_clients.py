"""orders, events, issuers and clients

Revision ID: 0001
Revises:
Create Date: 2026-11-25 11:55:12.207562
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cards",
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("card_id", sa.String(length=48), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_id", "card_id", name=op.f("pk_cards")),
    )
    op.create_table(
        "issuers",
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer_id", name=op.f("pk_issuers")),
    )
    op.create_table(
        "personalization_centres",
        sa.Column("centre_id", sa.String(length=64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("centre_id", name=op.f("pk_personalization_centres")),
    )
    op.create_table(
        "api_clients",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("secret_hash", sa.String(length=100), nullable=True),
        sa.Column("public_keys", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["issuers.issuer_id"], name=op.f("fk_api_clients_issuer_id_issuers")
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_api_clients")),
    )
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_clients_issuer_id"), ["issuer_id"], unique=False)

    op.create_table(
        "orders",
        sa.Column("operation_id", sa.String(length=64), nullable=False),
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("card_id", sa.String(length=48), nullable=False),
        sa.Column("active_card_id", sa.String(length=48), nullable=True),
        sa.Column("issuer_request_id", sa.String(length=64), nullable=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("consumer_id", sa.String(length=64), nullable=True),
        sa.Column("card_product_id", sa.String(length=64), nullable=True),
        sa.Column("input_file_name", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("production_status", sa.String(length=32), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("production_site", sa.String(length=64), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("sensitive_data", sa.LargeBinary(), nullable=True),
        sa.Column("sensitive_key_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["issuers.issuer_id"], name=op.f("fk_orders_issuer_id_issuers")
        ),
        sa.PrimaryKeyConstraint("operation_id", name=op.f("pk_orders")),
        sa.UniqueConstraint(
            "issuer_id", "active_card_id", name=op.f("uq_orders_issuer_id_active_card_id")
        ),
        sa.UniqueConstraint(
            "issuer_id", "issuer_request_id", name=op.f("uq_orders_issuer_id_issuer_request_id")
        ),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_issuer_card", ["issuer_id", "card_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_orders_production_status"), ["production_status"], unique=False
        )

    op.create_table(
        "events",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("issuer_id", sa.String(length=10), nullable=False),
        sa.Column("card_id", sa.String(length=48), nullable=False),
        sa.Column("operation_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"], ["orders.operation_id"], name=op.f("fk_events_operation_id_orders")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events")),
        sa.UniqueConstraint(
            "issuer_id", "card_id", "sequence", name=op.f("uq_events_issuer_id_card_id_sequence")
        ),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_issuer_id"), ["issuer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_operation_id"), ["operation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_operation_id"))
        batch_op.drop_index(batch_op.f("ix_events_issuer_id"))

    op.drop_table("events")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_production_status"))
        batch_op.drop_index("ix_orders_issuer_card")

    op.drop_table("orders")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_clients_issuer_id"))

    op.drop_table("api_clients")
    op.drop_table("personalization_centres")
    op.drop_table("issuers")
    op.drop_table("cards")
