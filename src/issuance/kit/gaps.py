"""What the store may have missed: holes in a card's sequences, and orders silent past due.

A hole: the card's highest sequence is 7 but 5 never arrived. Only the platform's `sequence`
extension shows holes; with a real D1 the second check is the only one.

Silent past due: a pending order whose `details.dueDate` has passed, with nothing heard of
its card since it became due; or, for one already known late, nothing heard for
`recheck_after` seconds. In one expression: last heard < max(due date, now - recheck_after).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from issuance.kit import schema
from issuance.kit.rules import FINAL_STATUSES
from issuance.kit.sql import advance, lock_card
from issuance.kit.store import CardStore

RECHECK_AFTER = 86_400.0  # seconds: a late order is asked about again after a silent day


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SequenceGap:
    card_id: str
    missing: list[int]


@dataclass(frozen=True, slots=True)
class SilentOrder:
    card_id: str
    operation_id: str
    due_date: str
    last_heard: str


def sequence_gaps(store: CardStore, issuer_id: str) -> list[SequenceGap]:
    """Cards with sequences missing below their highest one received."""
    card, received = schema.cards.c, schema.received.c
    gaps: list[SequenceGap] = []
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(card.card_id, card.complete_through, card.highest_sequence)
            .where(card.issuer_id == issuer_id, card.highest_sequence > card.complete_through)
            .order_by(card.card_id)
        ).all()
        for row in rows:
            seen = set(
                connection.scalars(
                    select(received.sequence).where(
                        received.issuer_id == issuer_id,
                        received.card_id == row.card_id,
                        received.sequence > row.complete_through,
                    )
                )
            )
            missing = range(row.complete_through + 1, row.highest_sequence + 1)
            gaps.append(SequenceGap(row.card_id, [n for n in missing if n not in seen]))
    return gaps


def silent_orders(
    store: CardStore, issuer_id: str, *, recheck_after: float = RECHECK_AFTER
) -> list[SilentOrder]:
    """Pending orders past their due date that nothing was heard of since (see module doc)."""
    now = store.clock()
    operation, card = schema.operations.c, schema.cards.c
    query = (
        select(operation.card_id, operation.operation_id, operation.due_at, card.last_heard_at)
        .join(
            schema.cards,
            (card.issuer_id == operation.issuer_id) & (card.card_id == operation.card_id),
        )
        .where(
            operation.issuer_id == issuer_id,
            operation.status.not_in(FINAL_STATUSES),
            operation.due_at <= now,
        )
        .order_by(operation.card_id, operation.operation_id)
    )
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        SilentOrder(row.card_id, row.operation_id, _iso(row.due_at), _iso(row.last_heard_at))
        for row in rows
        if row.last_heard_at < max(row.due_at, now - recheck_after)
    ]


def mark_complete(store: CardStore, issuer_id: str, card_id: str, *, through: int) -> None:
    """Every sequence up to `through` is accounted for (a productionStatus answer covers them)."""
    card = schema.cards.c
    where = (card.issuer_id == issuer_id, card.card_id == card_id)
    with store.engine.begin() as connection:
        lock_card(connection, issuer_id, card_id, store.clock())
        row = connection.execute(
            select(card.complete_through, card.highest_sequence).where(*where)
        ).one()
        complete = advance(connection, issuer_id, card_id, max(row.complete_through, through))
        connection.execute(
            schema.cards.update()
            .where(*where)
            .values(complete_through=complete, highest_sequence=max(row.highest_sequence, through))
        )
