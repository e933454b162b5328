"""Statements the store runs inside its transactions: insert-if-absent, the card lock, sequences."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from issuance.kit import schema


def insert_ignore(connection: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert the row unless its primary key exists; whether it was inserted.

    `ON CONFLICT DO NOTHING` on SQLite and PostgreSQL: a concurrent twin waits for the first
    insert to commit, then sees the conflict. Elsewhere, look first (racy, but never wrong twice:
    the loser's transaction fails and the sender retries).
    """
    dialect = connection.dialect.name
    if dialect in {"sqlite", "postgresql"}:
        module = sqlite if dialect == "sqlite" else postgresql
        statement = module.insert(table).values(**values).on_conflict_do_nothing()
        returned = statement.returning(*table.primary_key.columns)  # rowcount is not reliable
        return connection.execute(returned).first() is not None
    keys = list(table.primary_key.columns)
    exists = connection.execute(
        select(*keys).where(*(column == values[column.name] for column in keys))
    ).first()
    if exists is not None:
        return False
    connection.execute(table.insert().values(**values))
    return True


def lock_card(connection: Connection, issuer_id: str, card_id: str, now: float) -> None:
    """Create the card's row if needed and write it: from here on, this transaction owns the card."""
    insert_ignore(
        connection,
        schema.cards,
        {
            "issuer_id": issuer_id,
            "card_id": card_id,
            "version": 0,
            "highest_sequence": 0,
            "complete_through": 0,
            "last_heard_at": now,
        },
    )
    connection.execute(
        update(schema.cards)
        .where(schema.cards.c.issuer_id == issuer_id, schema.cards.c.card_id == card_id)
        .values(version=schema.cards.c.version + 1, last_heard_at=now)
    )


def note_sequence(connection: Connection, issuer_id: str, card_id: str, sequence: int) -> None:
    """Raise the card's highest sequence, and its "complete through" mark over what is received.

    Example: complete through 3, received 5 and 6; 4 arrives: complete through 6.
    """
    where = (schema.cards.c.issuer_id == issuer_id, schema.cards.c.card_id == card_id)
    row = connection.execute(
        select(schema.cards.c.highest_sequence, schema.cards.c.complete_through).where(*where)
    ).one()
    complete = advance(connection, issuer_id, card_id, row.complete_through)
    connection.execute(
        update(schema.cards)
        .where(*where)
        .values(highest_sequence=max(row.highest_sequence, sequence), complete_through=complete)
    )


def advance(connection: Connection, issuer_id: str, card_id: str, complete: int) -> int:
    """The highest `n` ≥ `complete` such that every sequence up to `n` is received."""
    received = schema.received.c
    seen = set(
        connection.scalars(
            select(received.sequence).where(
                received.issuer_id == issuer_id,
                received.card_id == card_id,
                received.sequence > complete,
            )
        )
    )
    while complete + 1 in seen:
        complete += 1
    return complete
