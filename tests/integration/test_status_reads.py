"""Status reads on the event loop (PostgreSQL): the repository's answer, and the engine's errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from issuance.api.errors import database_unavailable
from issuance.db.status_reads import APPLICATION_NAME, StatusReads
from issuance.domain.containers import ContainerRef
from issuance.domain.orders import Order, Shipment
from issuance.domain.statuses import ProductionStatus
from issuance.platform import Platform
from tests.factories import DEMO, new_card_id
from tests.reliability.harness import free_port

# Only PostgreSQL reads on the loop; SQLite keeps its request thread (api/routes/status.py).
pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

NOW = datetime(2026, 11, 25, 9, 30, 0, 123000, tzinfo=UTC)
T = TypeVar("T")


def _with_reads(platform: Platform, use: Callable[[StatusReads], Awaitable[T]]) -> T:
    async def run() -> T:
        reads = StatusReads(platform.engine.url)
        await reads.open()
        try:
            return await use(reads)
        finally:
            await reads.close()

    return asyncio.run(run())


def _save(
    platform: Platform, order: Order, *steps: tuple[ProductionStatus, Mapping[str, object]]
) -> None:
    with platform.uow() as uow:
        uow.orders.add(order, request={}, fingerprint="f" * 64, sealed=None)
        uow.commit()
    for target, fields in steps:
        with platform.uow() as uow:
            stored = uow.orders.active_for_card(DEMO, order.card_id)
            assert stored is not None
            stored.move_to(target, **fields)  # type: ignore[arg-type]
            uow.commit()


def card_with_history(platform: Platform) -> str:
    """A card with two orders: one failed (in a container), one shipped; its id."""
    card_id = new_card_id()
    failed = Order.accept(
        operation_id=f"op1-{card_id}",
        issuer_id=DEMO,
        card_id=card_id,
        at=NOW,
        issuer_request_id="req-1",
        consumer_id="consumer-1",
        card_product_id="DEMO-DEBIT",
        due_date=NOW + timedelta(days=2),
        cancellable_until=NOW + timedelta(hours=1),
        production_site="SITE-A",
        materials=("CARRIER-A", "ENVELOPE-C5"),
        container=ContainerRef(group_id="branch-7", order_id="bulk-1"),
    )
    _save(platform, failed, (ProductionStatus.DATA_EXCEPTION, {"at": NOW, "reason": "bad data"}))
    later = NOW + timedelta(minutes=5)
    shipped = Order.accept(operation_id=f"op2-{card_id}", issuer_id=DEMO, card_id=card_id, at=later)
    path = [
        ProductionStatus.DATA_PREPARED,
        ProductionStatus.CARD_PROD_READY,
        ProductionStatus.CARD_PROD_ONGOING,
        ProductionStatus.CARD_PROD_DONE,
    ]
    parcel = Shipment(carrier="DHL", tracking_number="JD0001", tracking_url="https://t.example/1")
    _save(
        platform,
        shipped,
        *[(step, {"at": later}) for step in path],
        (ProductionStatus.CARD_SHIPPED, {"at": later, "shipment": parcel}),
    )

    return card_id


def test_the_loop_answers_what_the_repository_reads(platform: Platform) -> None:
    card_id = card_with_history(platform)
    with platform.reader() as uow:
        expected = [o.operation(sequence=s) for o, s in uow.orders.for_card(DEMO, card_id)]
    read = _with_reads(platform, lambda reads: reads.for_card(DEMO, card_id))

    assert [o.operation(sequence=s) for o, s in read] == expected
    assert [(op["details"]["status"], op["sequence"]) for op in expected] == [
        ("DATA_EXCEPTION", 2),  # the card's sequence runs across its orders
        ("CARD_SHIPPED", 8),
    ]
    assert expected[0]["details"]["container"]["groupId"] == "branch-7"
    assert expected[1]["details"]["shipment"]["trackingNumber"] == "JD0001"


def test_a_card_without_orders_reads_as_none(platform: Platform) -> None:
    read = _with_reads(platform, lambda reads: reads.for_card(DEMO, "nobody"))
    assert read == []


def test_an_unreachable_server_is_the_engines_unavailable_error(
    platform: Platform,
) -> None:
    async def run() -> None:
        reads = StatusReads(platform.engine.url.set(port=free_port()), timeout=0.5)
        await reads.open()
        try:
            with pytest.raises((DBAPIError, PoolTimeout)) as raised:
                await reads.for_card(DEMO, new_card_id())
        finally:
            await reads.close()
        assert database_unavailable(raised.value), raised.value

    asyncio.run(run())


def test_connections_the_server_dropped_are_replaced(platform: Platform) -> None:
    """A restart cuts every connection: at most one read fails (503), then reads go on."""
    card_id = new_card_id()
    _save(
        platform,
        Order.accept(operation_id=f"op-{card_id}", issuer_id=DEMO, card_id=card_id, at=NOW),
    )
    database = platform.engine.url.database

    def drop_them() -> int:
        with platform.engine.connect() as connection:
            return len(
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND datname = :database"
                    ),
                    {"name": APPLICATION_NAME, "database": database},
                ).all()
            )

    failures: list[DBAPIError] = []

    async def use(reads: StatusReads) -> list[str]:
        assert len(await reads.for_card(DEMO, card_id)) == 1
        assert await asyncio.to_thread(drop_them) >= 1
        answers = []
        for _ in range(4):
            try:
                answers.append(f"{len(await reads.for_card(DEMO, card_id))} order")
            except DBAPIError as error:
                failures.append(error)
                answers.append("unavailable")
            await asyncio.sleep(0.1)
        return answers

    answers = _with_reads(platform, use)
    assert all(database_unavailable(error) for error in failures), failures
    assert answers.count("unavailable") <= 1, answers
    assert answers[-2:] == ["1 order", "1 order"], answers
