"""The event journal: one event per change, per-card sequences without gaps, even under races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from issuance.db.models import EventRow, OrderRow
from issuance.domain.errors import IllegalTransition
from issuance.domain.orders import Order
from issuance.domain.statuses import ProductionStatus
from issuance.platform import Platform
from issuance.services.unit_of_work import Collision
from tests.factories import DEMO, new_card_id

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def _place(platform: Platform, card_id: str) -> str:
    order = Order.accept(
        operation_id=f"op-{card_id}",
        issuer_id=DEMO,
        card_id=card_id,
        at=NOW,
        card_product_id="DEMO-DEBIT",
    )
    with platform.uow() as uow:
        uow.orders.add(order, request={}, fingerprint="f" * 64, sealed=None)
        uow.commit()
    return order.operation_id


def _move(platform: Platform, card_id: str, target: ProductionStatus) -> None:
    with platform.uow() as uow:
        order = uow.orders.active_for_card(DEMO, card_id)
        assert order is not None
        order.move_to(target, at=NOW)
        uow.commit()


def _journal(platform: Platform, card_id: str) -> list[tuple[int, str, str]]:
    with platform.engine.connect() as connection:
        rows = connection.execute(
            select(EventRow.sequence, EventRow.event_type, EventRow.payload)
            .where(EventRow.card_id == card_id)
            .order_by(EventRow.sequence)
        ).all()
    return [(row.sequence, row.event_type, row.payload["details"]["status"]) for row in rows]


def test_each_change_writes_its_event_with_the_full_operation(platform: Platform) -> None:
    card_id = new_card_id()
    _place(platform, card_id)
    _move(platform, card_id, ProductionStatus.DATA_PREPARED)
    _move(platform, card_id, ProductionStatus.DATA_EXCEPTION)

    assert _journal(platform, card_id) == [
        (1, "order.accepted", "CARD_PROD_REQUESTED"),
        (2, "order.status_changed", "DATA_PREPARED"),
        (3, "order.status_changed", "DATA_EXCEPTION"),
    ]
    with platform.engine.connect() as connection:
        last = connection.scalars(
            select(EventRow.payload).where(EventRow.card_id == card_id, EventRow.sequence == 3)
        ).one()
        row = connection.execute(select(OrderRow).where(OrderRow.card_id == card_id)).one()
    assert last["status"] == "FAILED"
    assert last["endTime"] == "2026-11-25T09:30:00.000Z"
    assert last["errorCode"] == "DATA_EXCEPTION"
    assert last["sequence"] == 3
    assert row.active_card_id is None  # a failed order no longer blocks a new one for the card


def test_a_refused_move_writes_nothing(platform: Platform) -> None:
    card_id = new_card_id()
    _place(platform, card_id)
    with pytest.raises(IllegalTransition):
        _move(platform, card_id, ProductionStatus.CARD_SHIPPED)
    assert _journal(platform, card_id) == [(1, "order.accepted", "CARD_PROD_REQUESTED")]


def test_sequences_count_per_card_across_its_orders(platform: Platform) -> None:
    card_id = new_card_id()
    _place(platform, card_id)
    _move(platform, card_id, ProductionStatus.CARD_PROD_CANCELED)
    second = Order.accept(operation_id=f"op2-{card_id}", issuer_id=DEMO, card_id=card_id, at=NOW)
    with platform.uow() as uow:
        uow.orders.add(second, request={}, fingerprint="f" * 64, sealed=None)
        uow.commit()
    assert [sequence for sequence, _, _ in _journal(platform, card_id)] == [1, 2, 3]
    with platform.uow() as uow:
        listed = uow.orders.for_card(DEMO, card_id)
    assert [(order.operation_id, sequence) for order, sequence in listed] == [
        (f"op-{card_id}", 2),
        (f"op2-{card_id}", 3),
    ]


def test_two_writers_moving_one_order_at_once_cannot_both_win(platform: Platform) -> None:
    """Both try to move the order from CARD_PROD_REQUESTED; exactly one change is journalled.

    On PostgreSQL both read the order before either writes (the barrier) and the optimistic lock
    refuses the second commit. On SQLite, BEGIN IMMEDIATE serialises the two writers before they
    read, so the second finds the move already made.
    """
    card_id = new_card_id()
    _place(platform, card_id)
    postgresql = platform.engine.dialect.name == "postgresql"
    loaded = threading.Barrier(2 if postgresql else 1)
    outcomes: list[str] = []

    def writer() -> None:
        try:
            with platform.uow() as uow:
                order = uow.orders.active_for_card(DEMO, card_id)
                assert order is not None
                loaded.wait(timeout=10)
                order.move_to(ProductionStatus.DATA_PREPARED, at=NOW)
                uow.commit()
            outcomes.append("committed")
        except (Collision, IllegalTransition) as error:
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == sorted(
        ["committed", "Collision" if postgresql else "IllegalTransition"]
    )
    assert _journal(platform, card_id) == [
        (1, "order.accepted", "CARD_PROD_REQUESTED"),
        (2, "order.status_changed", "DATA_PREPARED"),
    ]


def test_concurrent_orders_of_many_cards_each_start_at_one(platform: Platform) -> None:
    cards = [new_card_id() for _ in range(20)]
    threads = [threading.Thread(target=_place, args=(platform, card)) for card in cards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for card in cards:
        assert _journal(platform, card) == [(1, "order.accepted", "CARD_PROD_REQUESTED")]
