"""Retention of sensitive data: purged in the change that makes it useless, or after a delay."""

from __future__ import annotations

from datetime import timedelta

import pytest

from issuance.domain.events import EventKind
from issuance.domain.operations import iso_utc
from issuance.domain.orders import Order
from issuance.domain.retention import PURGEABLE, Retention
from issuance.domain.statuses import TRANSITIONS, ProductionStatus
from tests.unit.builders import SHIPMENT, at, order_at, shortest_path

S = ProductionStatus
AT_ONCE = Retention()
A_DAY = Retention(timedelta(hours=24))


def _walk(order: Order, goal: S) -> None:
    for minute, step in enumerate(shortest_path(TRANSITIONS, order.production_status, goal), 1):
        shipment = SHIPMENT if step is S.CARD_SHIPPED else None
        order.move_to(step, at=at(11, minute), shipment=shipment)


@pytest.mark.parametrize("goal", sorted(PURGEABLE))
def test_with_no_retention_the_step_that_ends_the_use_purges_in_its_own_event(goal: S) -> None:
    order = order_at(S.CARD_PROD_REQUESTED)
    order.retention = AT_ONCE

    _walk(order, goal)

    first = next(
        s for s in shortest_path(TRANSITIONS, S.CARD_PROD_REQUESTED, goal) if s in PURGEABLE
    )
    purge_event = next(e for e in order.events if e.operation["details"]["status"] == first)
    assert order.sensitive_data_purged_at == purge_event.occurred_at == order.purgeable_since
    shown = purge_event.operation["details"]["sensitiveDataPurgedAt"]
    assert shown == iso_utc(purge_event.occurred_at)
    assert all(e.kind is not EventKind.SENSITIVE_DATA_PURGED for e in order.events)


@pytest.mark.parametrize(
    "status", sorted(set(S) - PURGEABLE), ids=lambda s: s.value if isinstance(s, S) else None
)
def test_data_still_needed_is_kept(status: S) -> None:
    order = order_at(S.CARD_PROD_REQUESTED)
    order.retention = AT_ONCE

    _walk(order, status)

    assert order.purgeable_since is None
    assert order.sensitive_data_purged_at is None
    assert "sensitiveDataPurgedAt" not in order.operation()["details"]


def test_a_production_exception_keeps_the_data_to_make_the_card_again() -> None:
    order = order_at(S.CARD_PROD_ONGOING)
    order.retention = AT_ONCE

    order.move_to(S.CARD_PROD_EXCEPTION, at=at(11), reason="spoiled")
    order.move_to(S.CARD_PROD_READY, at=at(11, 5))

    assert order.sensitive_data_purged_at is None


def test_with_a_retention_the_data_outlives_the_step_by_that_long() -> None:
    order = order_at(S.CARD_PROD_ONGOING)
    order.retention = A_DAY
    order.move_to(S.CARD_PROD_DONE, at=at(10))
    order.events.clear()

    assert order.purgeable_since == at(10)
    assert order.sensitive_data_purged_at is None
    assert not order.purge_sensitive_data(
        at=at(10) + timedelta(hours=23, minutes=59), retention=A_DAY
    )
    assert order.events == []

    assert order.purge_sensitive_data(at=at(10) + timedelta(hours=24), retention=A_DAY)

    [event] = order.events
    assert event.kind is EventKind.SENSITIVE_DATA_PURGED
    assert event.operation["details"]["sensitiveDataPurgedAt"] == "2025-01-18T10:00:00.000Z"
    assert event.operation["details"]["status"] == "CARD_PROD_DONE"


def test_a_purge_happens_once() -> None:
    order = order_at(S.CARD_PROD_DONE)
    assert order.purge_sensitive_data(at=at(12), retention=AT_ONCE)

    assert not order.purge_sensitive_data(at=at(13), retention=AT_ONCE)
    assert order.sensitive_data_purged_at == at(12)


def test_a_later_step_keeps_the_moment_the_data_became_useless() -> None:
    order = order_at(S.CARD_PROD_DONE)
    became_useless = order.purgeable_since

    order.move_to(S.CARD_SHIPPED, at=at(12), shipment=SHIPMENT)

    assert order.purgeable_since == became_useless is not None


def test_a_bare_order_without_a_policy_never_purges_as_it_moves() -> None:
    order = order_at(S.CARD_SHIPPED)

    assert order.purgeable_since is not None
    assert order.sensitive_data_purged_at is None


def test_the_rule_itself() -> None:
    assert not A_DAY.purge_due(purgeable_since=None, now=at(12))
    assert AT_ONCE.purge_due(purgeable_since=at(12), now=at(12))
    assert not A_DAY.purge_due(purgeable_since=at(12), now=at(12) + timedelta(hours=23))
    assert A_DAY.purge_due(purgeable_since=at(12), now=at(12) + timedelta(hours=24))
