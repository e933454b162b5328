"""The issuer-side tables: the kit's own small schema, made with `metadata.create_all`.

They live in the issuer's database next to its own tables (prefixed `d1_`, so they do not
collide), on SQLite by default or any database SQLAlchemy speaks; SQLite and PostgreSQL are the
ones tested. Times the kit keeps for itself are epoch seconds (UTC), compared as numbers.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

ID_LENGTH = 64  # characters of an issuer, card or operation id (D1's ids are shorter)
STATUS_LENGTH = 64  # characters of a status value, known or not

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "pk": "pk_%(table_name)s",
    }
)

cards = Table(
    "d1_cards",
    metadata,
    Column("issuer_id", String(ID_LENGTH), primary_key=True),
    Column("card_id", String(ID_LENGTH), primary_key=True),
    # every write of the card bumps it: the row lock that serialises writers of one card
    Column("version", Integer, nullable=False, default=0),
    Column("highest_sequence", Integer, nullable=False, default=0),
    # every sequence up to this one is received, or covered by a productionStatus answer
    Column("complete_through", Integer, nullable=False, default=0),
    Column("last_heard_at", Float, nullable=False),  # any report of the card, duplicates included
)

operations = Table(
    "d1_operations",
    metadata,
    Column("issuer_id", String(ID_LENGTH), primary_key=True),
    Column("operation_id", String(ID_LENGTH), primary_key=True),
    Column("card_id", String(ID_LENGTH), nullable=False),
    Column(
        "status", String(STATUS_LENGTH), nullable=False
    ),  # PENDING, SUCCESSFUL, FAILED (or newer)
    Column("step", String(STATUS_LENGTH), nullable=False),  # details.status, kept even when unknown
    Column("sequence", Integer),
    Column("due_at", Float),  # details.dueDate
    Column("body", Text, nullable=False),  # the operation as received (JSON)
    Column("updated_at", Float, nullable=False),
    Index(None, "issuer_id", "card_id"),
)

received = Table(
    "d1_received",
    metadata,
    Column("issuer_id", String(ID_LENGTH), primary_key=True),
    Column("operation_id", String(ID_LENGTH), primary_key=True),
    Column("event_key", String(64), primary_key=True),  # seq:<n> or sha:<digest>
    Column("card_id", String(ID_LENGTH), nullable=False),
    Column("sequence", Integer),
    Column("received_at", Float, nullable=False),
    Index(None, "issuer_id", "card_id", "sequence"),
)

changes = Table(
    "d1_changes",
    metadata,
    Column("change_id", Integer, primary_key=True, autoincrement=True),
    Column("issuer_id", String(ID_LENGTH), nullable=False),
    Column("card_id", String(ID_LENGTH), nullable=False),
    Column("operation_id", String(ID_LENGTH), nullable=False),
    Column("body", Text, nullable=False),
    Column("previous", Text),
    Column("created_at", Float, nullable=False),
    Column("available_at", Float, nullable=False),  # claimed or backing off until then
    Column("attempts", Integer, nullable=False, default=0),
    Column("handled_at", Float),
    Index(None, "handled_at", "available_at"),
    Index(None, "issuer_id", "card_id", "change_id"),
)
"""State changes waiting for (or done with) the issuer's handler: an outbox on the issuer side."""

messages = Table(
    "d1_messages",
    metadata,
    Column("message_id", String(128), primary_key=True),  # Standard Webhooks `webhook-id`
    Column("received_at", Float, nullable=False),
)

feed_cursors = Table(
    "d1_feed_cursors",
    metadata,
    Column("issuer_id", String(ID_LENGTH), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)
