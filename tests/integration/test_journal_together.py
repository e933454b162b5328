"""A unit of work that moves many orders journals them in a few statements (db/bulk_rows.py):
the same event and delivery rows as orders committed one at a time. Both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from issuance.db.models import DeliveryRow, EventRow
from issuance.domain.orders import Order
from issuance.domain.statuses import ProductionStatus
from issuance.platform import Platform
from tests.factories import DEMO, new_card_id
from tests.outbox import statements

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
STEPS = (ProductionStatus.DATA_PREPARED, ProductionStatus.CARD_PROD_READY)


def _accepted(platform: Platform, cards: list[str]) -> None:
    for card_id in cards:
        order = Order.accept(operation_id=f"op-{card_id}", issuer_id=DEMO, card_id=card_id, at=NOW)
        with platform.uow() as uow:
            uow.orders.add(order, request={}, fingerprint="f" * 64, sealed=None)
            uow.commit()


def _advance(platform: Platform, cards: list[str], steps: int = len(STEPS)) -> None:
    """Each card's order moves `steps` steps further along STEPS, all in one unit of work."""
    with platform.uow() as uow:
        for card_id in cards:
            order = uow.orders.active_for_card(DEMO, card_id)
            assert order is not None
            done = (
                STEPS.index(order.production_status) + 1 if order.production_status in STEPS else 0
            )
            for minutes, status in enumerate(STEPS[done : done + steps], start=done + 1):
                order.move_to(status, at=NOW + timedelta(minutes=minutes))
        uow.commit()


def _journal(platform: Platform, card_id: str) -> list[dict[str, Any]]:
    """The card's events and their deliveries, with the card's own ids as placeholders."""
    with platform.engine.connect() as connection:
        events = connection.execute(
            select(EventRow).where(EventRow.card_id == card_id).order_by(EventRow.sequence)
        ).all()
        deliveries = connection.execute(
            select(DeliveryRow).where(DeliveryRow.card_id == card_id)
        ).all()
    rows = []
    for event in events:
        sent = [d for d in deliveries if d.event_id == event.event_id]
        payload = json.dumps(event.payload, sort_keys=True).replace(card_id, "CARD")
        rows.append(
            {
                "sequence": event.sequence,
                "event_type": event.event_type,
                "operation_id": event.operation_id.replace(card_id, "CARD"),
                "payload": payload,
                "occurred_at": event.occurred_at,
                "deliveries": sorted(
                    (d.endpoint_id, d.status, d.attempts, d.next_attempt_at == event.recorded_at)
                    for d in sent
                ),
            }
        )
    return rows


def test_many_orders_journal_as_each_alone_would(platform: Platform) -> None:
    alone, together = [new_card_id() for _ in range(3)], [new_card_id() for _ in range(3)]
    _accepted(platform, alone + together)
    for card_id in alone:
        _advance(platform, [card_id])

    with statements(platform.engine) as sent:
        _advance(platform, together)

    for mine, theirs in zip(alone, together, strict=True):
        assert _journal(platform, theirs) == _journal(platform, mine)
    assert [e["sequence"] for e in _journal(platform, together[0])] == [1, 2, 3]
    assert _journal(platform, together[0])[1]["deliveries"], "the sandbox issuer is notified"
    inserts = [s for s in sent if "INSERT INTO EVENTS" in s.sql.upper()]
    assert len(inserts) == 1, "six events, one insert (with their deliveries, on PostgreSQL)"


def test_events_written_together_keep_the_commit_order_of_the_feed(platform: Platform) -> None:
    cards = [new_card_id() for _ in range(3)]
    _accepted(platform, cards)
    _advance(platform, cards[:1], steps=1)  # the first card's counter is ahead of the others

    _advance(platform, cards[::-1], steps=1)  # the unit of work meets them last card first

    with platform.engine.connect() as connection:
        written = connection.execute(
            select(EventRow.card_id, EventRow.sequence, EventRow.txid, EventRow.event_id)
            .where(EventRow.card_id.in_(cards), EventRow.event_type != "order.accepted")
            .order_by(EventRow.event_id)
        ).all()
    last = [(card, sequence) for card, sequence, _, _ in written[-3:]]
    assert last == [(cards[2], 2), (cards[1], 2), (cards[0], 3)], "ids in the unit of work's order"
    first_txid = written[0].txid
    txids = {txid for _, _, txid, _ in written[-3:]}
    assert len(txids) == 1, "one transaction, one txid"
    assert txids.pop() >= first_txid, "never behind the card's previous event"
