"""The handler's queue (`d1_changes`): claim the next changes, then mark them handled or retry.

A change is claimable when it is not handled, its `available_at` has passed, and no earlier change
of the same card is still unhandled: a card's changes reach the handler in the order they were
stored, even with several dispatchers (processes) at work. Claiming sets `available_at` a lease
ahead, so a dispatcher that dies mid-call leaves the change to be claimed again after the lease.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.orm import aliased

from issuance.contract.operations import Operation
from issuance.kit import schema
from issuance.kit.models import CardChange
from issuance.kit.store import CardStore

LEASE = 300.0  # seconds a claimed change is left to its dispatcher before others may take it
MAX_BACKOFF = 300.0  # seconds between two calls of a failing handler, at most


def claim(store: CardStore, *, limit: int = 100, lease: float = LEASE) -> list[CardChange]:
    """Claim up to `limit` changes, at most one per card (the oldest unhandled of each).

    One `UPDATE … RETURNING`: nothing is read before the write, so SQLite never finds two
    transactions each waiting for the other; on PostgreSQL a concurrent claimer re-checks
    `available_at` on the row it waited for, and skips it.
    """
    now = store.clock()
    change = schema.changes.c
    candidate, earlier = aliased(schema.changes), aliased(schema.changes)
    blocked = (
        select(earlier.c.change_id)
        .where(
            earlier.c.issuer_id == candidate.c.issuer_id,
            earlier.c.card_id == candidate.c.card_id,
            earlier.c.handled_at.is_(None),
            earlier.c.change_id < candidate.c.change_id,
        )
        .exists()
    )
    ready = (
        select(candidate.c.change_id)
        .where(candidate.c.handled_at.is_(None), candidate.c.available_at <= now, ~blocked)
        .order_by(candidate.c.change_id)
        .limit(limit)
    )
    statement = (
        update(schema.changes)
        .where(change.change_id.in_(ready), change.handled_at.is_(None), change.available_at <= now)
        .values(available_at=now + lease, attempts=change.attempts + 1)
        .returning(schema.changes)
    )
    with store.engine.begin() as connection:
        rows = connection.execute(statement).all()
    return [_change(row) for row in sorted(rows, key=lambda row: row.change_id)]


def _change(row: Row[Any]) -> CardChange:
    raw = json.loads(row.body)
    return CardChange(
        change_id=row.change_id,
        issuer_id=row.issuer_id,
        card_id=row.card_id,
        operation=Operation.model_validate(raw),
        previous=Operation.model_validate_json(row.previous) if row.previous else None,
        raw=raw,
    )


def mark_handled(store: CardStore, change_id: int) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            update(schema.changes)
            .where(schema.changes.c.change_id == change_id)
            .values(handled_at=store.clock())
        )


def retry_later(store: CardStore, change_id: int) -> None:
    """The handler failed: try again after 2, 4, 8… seconds (by attempts so far), at most 5 min."""
    where = schema.changes.c.change_id == change_id
    now = store.clock()
    with store.engine.begin() as connection:  # write first, then the precise delay
        attempts = connection.execute(
            update(schema.changes)
            .where(where)
            .values(available_at=now + MAX_BACKOFF)
            .returning(schema.changes.c.attempts)
        ).scalar_one()
        delay = min(MAX_BACKOFF, 2.0**attempts)
        connection.execute(update(schema.changes).where(where).values(available_at=now + delay))


def forget_handled(store: CardStore, *, older_than: float) -> int:
    """Drop changes handled before `older_than` (epoch seconds); how many."""
    where = schema.changes.c.handled_at < older_than
    with store.engine.begin() as connection:
        return int(connection.execute(delete(schema.changes).where(where)).rowcount)


def pending(store: CardStore) -> int:
    """How many changes wait for the handler."""
    query = select(func.count()).where(schema.changes.c.handled_at.is_(None))
    with store.engine.connect() as connection:
        return int(connection.scalar(query) or 0)
