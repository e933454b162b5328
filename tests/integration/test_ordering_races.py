"""The use case under races that only timing can produce, made deterministic."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from issuance.db.models import OrderRow
from issuance.db.unit_of_work import SqlUnitOfWork
from issuance.domain.errors import Conflict
from issuance.domain.orders import Order
from issuance.platform import Platform
from issuance.services.ordering import Placement, place_order
from tests.factories import DEMO, new_card_id, place_command


class _InterruptedBeforeCommit(SqlUnitOfWork):
    """A unit of work in which another request commits just before this one does."""

    def __init__(self, platform: Platform, meanwhile: Callable[[], object]) -> None:
        super().__init__(sessionmaker(platform.engine, expire_on_commit=False))
        self.meanwhile = meanwhile

    def commit(self) -> None:
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None  # type: ignore[assignment]
            run()
        super().commit()


def _orders_of(platform: Platform, card_id: str) -> int:
    with platform.engine.connect() as connection:
        return int(
            connection.scalar(
                select(func.count()).select_from(OrderRow).where(OrderRow.card_id == card_id)
            )
            or 0
        )


@pytest.fixture
def postgresql_platform(platform: Platform) -> Platform:
    if platform.engine.dialect.name != "postgresql":
        pytest.skip(
            "SQLite serialises writers before they read: this interleaving cannot happen there"
        )
    return platform


def test_losing_an_identical_race_answers_with_the_winner(postgresql_platform: Platform) -> None:
    platform, card_id = postgresql_platform, new_card_id()
    command = place_command(card_id, "req-1")
    winner: list[Placement] = []

    def other_request() -> None:
        winner.append(
            place_order(
                command, uow=platform.uow(), clock=platform.clock, new_id=lambda: "op-winner"
            )
        )

    loser = place_order(
        command,
        uow=_InterruptedBeforeCommit(platform, other_request),
        clock=platform.clock,
        new_id=lambda: "op-loser",
    )
    assert winner == [Placement("op-winner", replayed=False)]
    assert loser == Placement("op-winner", replayed=True)
    assert _orders_of(platform, card_id) == 1


def test_losing_a_race_for_the_card_is_a_conflict(postgresql_platform: Platform) -> None:
    platform, card_id = postgresql_platform, new_card_id()

    def other_request() -> None:
        place_order(
            place_command(card_id, "req-other", "b" * 64),
            uow=platform.uow(),
            clock=platform.clock,
            new_id=lambda: "op-other",
        )

    with pytest.raises(Conflict) as refused:
        place_order(
            place_command(card_id, "req-mine"),
            uow=_InterruptedBeforeCommit(platform, other_request),
            clock=platform.clock,
            new_id=lambda: "op-mine",
        )
    assert refused.value.code == "ORDER_IN_PROGRESS"
    assert _orders_of(platform, card_id) == 1


def test_readers_never_wait_for_a_writer(platform: Platform) -> None:
    """A read-only unit of work sees committed state while a write transaction is open."""
    card_id = new_card_id()
    with platform.uow() as writer:
        writer.orders.add(
            Order.accept(
                operation_id="op-open", issuer_id=DEMO, card_id=card_id, at=platform.clock()
            ),
            request={},
            fingerprint="c" * 64,
            sealed=None,
        )
        writer.session.flush()  # the write lock is held from here on
        with platform.reader() as reader:
            assert reader.orders.for_card(DEMO, card_id) == []
        writer.commit()
    with platform.reader() as reader:
        assert [order.operation_id for order, _ in reader.orders.for_card(DEMO, card_id)] == [
            "op-open"
        ]
