"""The Order aggregate: acceptance, legal moves with their events, illegal moves that change nothing."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from issuance.domain.errors import Conflict, IllegalTransition
from issuance.domain.events import OrderAccepted, StatusChanged, event_type
from issuance.domain.orders import Order
from issuance.domain.statuses import TRANSITIONS, OperationStatus, ProductionStatus
from tests.unit.builders import ILLEGAL_MOVES, LEGAL_MOVES, at

S = ProductionStatus

# The shortest path from CARD_PROD_REQUESTED to each status.
PATH_TO = {
    S.CARD_PROD_REQUESTED: [],
    S.DATA_PREPARED: [S.DATA_PREPARED],
    S.CARD_PROD_READY: [S.DATA_PREPARED, S.CARD_PROD_READY],
    S.CARD_PROD_ONGOING: [S.DATA_PREPARED, S.CARD_PROD_READY, S.CARD_PROD_ONGOING],
    S.CARD_PROD_DONE: [S.DATA_PREPARED, S.CARD_PROD_READY, S.CARD_PROD_ONGOING, S.CARD_PROD_DONE],
    S.CARD_SHIPPED: [
        S.DATA_PREPARED,
        S.CARD_PROD_READY,
        S.CARD_PROD_ONGOING,
        S.CARD_PROD_DONE,
        S.CARD_SHIPPED,
    ],
    S.DATA_EXCEPTION: [S.DATA_EXCEPTION],
    S.CARD_PROD_CANCELED: [S.CARD_PROD_CANCELED],
}


def accepted(**overrides: Any) -> Order:
    fields: dict[str, Any] = {
        "operation_id": "op-1",
        "issuer_id": "DEMOBANK01",
        "card_id": "card-1",
        "at": at(9),
    }
    fields.update(overrides)
    return Order.accept(**fields)


def order_at(status: ProductionStatus) -> Order:
    order = accepted()
    for step, target in enumerate(PATH_TO[status], start=1):
        order.move_to(target, at=at(9, step))
    assert order.production_status is status
    return order


def test_accept_starts_at_requested_and_pending() -> None:
    order = accepted()

    assert order.production_status is S.CARD_PROD_REQUESTED
    assert order.status is OperationStatus.PENDING
    assert order.start_time == at(9)
    assert order.end_time is None


def test_accept_records_order_accepted_with_the_operation_snapshot() -> None:
    order = accepted(issuer_request_id="req-1", card_product_id="DEMO-DEBIT")

    [event] = order.events
    assert isinstance(event, OrderAccepted)
    assert event_type(event) == "order.accepted"
    assert event.operation_id == "op-1"
    assert event.occurred_at == at(9)
    assert event.operation == {
        "operationId": "op-1",
        "operation": "PRODUCE",
        "status": "PENDING",
        "startTime": "2025-01-17T09:00:00.000Z",
        "cardId": "card-1",
        "details": {"status": "CARD_PROD_REQUESTED", "issuerRequestId": "req-1"},
        "issuerRequestId": "req-1",
    }


def test_the_accepted_snapshot_does_not_follow_later_changes() -> None:
    order = accepted()
    snapshot = copy.deepcopy(order.events[0].operation)

    order.move_to(S.DATA_PREPARED, at=at(10))

    assert order.events[0].operation == snapshot


@pytest.mark.parametrize(("source", "target"), sorted(LEGAL_MOVES))
def test_legal_move_records_status_changed(
    source: ProductionStatus, target: ProductionStatus
) -> None:
    order = order_at(source)
    before = len(order.events)
    moment = at(12, 30, 15, 250_000)

    order.move_to(target, at=moment)

    assert order.production_status is target
    assert len(order.events) == before + 1
    event = order.events[-1]
    assert isinstance(event, StatusChanged)
    assert event_type(event) == "order.status_changed"
    assert (event.operation_id, event.previous, event.current) == ("op-1", source, target)
    assert event.occurred_at == moment
    assert event.operation["details"]["status"] == target.value
    assert event.operation["status"] == order.status.value


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.CARD_PROD_DONE, S.CARD_SHIPPED),
        (S.CARD_PROD_REQUESTED, S.DATA_EXCEPTION),
        (S.DATA_PREPARED, S.DATA_EXCEPTION),
        (S.CARD_PROD_REQUESTED, S.CARD_PROD_CANCELED),
        (S.DATA_PREPARED, S.CARD_PROD_CANCELED),
        (S.CARD_PROD_READY, S.CARD_PROD_CANCELED),
    ],
)
def test_a_final_step_sets_end_time(source: ProductionStatus, target: ProductionStatus) -> None:
    order = order_at(source)
    moment = at(16, 45, 1, 7_000)

    order.move_to(target, at=moment)

    assert order.end_time == moment
    assert order.events[-1].operation["endTime"] == "2025-01-17T16:45:01.007Z"


@pytest.mark.parametrize("target", [S.DATA_PREPARED, S.CARD_PROD_READY, S.CARD_PROD_DONE])
def test_an_intermediate_step_leaves_end_time_unset(target: ProductionStatus) -> None:
    order = order_at(target)

    assert order.end_time is None
    assert "endTime" not in order.events[-1].operation


def test_shipping_makes_the_operation_successful_without_error() -> None:
    order = order_at(S.CARD_SHIPPED)

    assert order.status is OperationStatus.SUCCESSFUL
    assert order.error_code is None
    assert order.error is None
    assert "errorCode" not in order.events[-1].operation


def test_failure_records_the_given_error_code_and_error() -> None:
    order = accepted()

    order.move_to(
        S.DATA_EXCEPTION, at=at(10), error_code="EMBOSS_NAME_TOO_LONG", error="name too long"
    )

    assert order.status is OperationStatus.FAILED
    assert (order.error_code, order.error) == ("EMBOSS_NAME_TOO_LONG", "name too long")
    operation = order.events[-1].operation
    assert operation["status"] == "FAILED"
    assert operation["errorCode"] == "EMBOSS_NAME_TOO_LONG"
    assert operation["error"] == "name too long"


def test_failure_without_error_code_uses_the_status_and_the_reason() -> None:
    order = order_at(S.DATA_PREPARED)

    order.move_to(S.CARD_PROD_CANCELED, at=at(11), reason="cardholder left the bank")

    assert order.error_code == "CARD_PROD_CANCELED"
    assert order.error == "cardholder left the bank"
    assert order.reason == "cardholder left the bank"
    assert order.events[-1].operation["details"]["reason"] == "cardholder left the bank"


def test_error_fields_are_ignored_on_a_pending_step() -> None:
    order = accepted()

    order.move_to(S.DATA_PREPARED, at=at(10), error_code="SHOULD_NOT_STICK", error="nope")

    assert order.error_code is None
    assert order.error is None


@pytest.mark.parametrize(("source", "target"), ILLEGAL_MOVES)
def test_illegal_move_raises_and_changes_nothing(
    source: ProductionStatus, target: ProductionStatus
) -> None:
    order = order_at(source)
    order.reason = "before"
    before = (
        order.production_status,
        order.end_time,
        order.error_code,
        order.error,
        order.reason,
        list(order.events),
    )

    with pytest.raises(IllegalTransition) as raised:
        order.move_to(target, at=at(23), reason="after", error_code="AFTER", error="after")

    after = (
        order.production_status,
        order.end_time,
        order.error_code,
        order.error,
        order.reason,
        list(order.events),
    )
    assert after == before
    assert raised.value.code == "ILLEGAL_STATUS_TRANSITION"
    assert raised.value.field == "details.status"


def test_illegal_transition_is_a_conflict_naming_both_steps() -> None:
    order = order_at(S.CARD_SHIPPED)

    with pytest.raises(Conflict, match="from CARD_SHIPPED to DATA_PREPARED"):
        order.move_to(S.DATA_PREPARED, at=at(23))


def test_end_time_of_a_finished_order_is_not_moved_by_a_refused_step() -> None:
    order = order_at(S.CARD_PROD_CANCELED)
    ended = order.end_time

    with pytest.raises(IllegalTransition):
        order.move_to(S.CARD_PROD_CANCELED, at=at(9) + timedelta(days=3))

    assert order.end_time == ended


def test_a_full_production_run_records_one_event_per_step() -> None:
    order = order_at(S.CARD_SHIPPED)

    changes = [(e.previous, e.current) for e in order.events if isinstance(e, StatusChanged)]
    assert changes == [
        (S.CARD_PROD_REQUESTED, S.DATA_PREPARED),
        (S.DATA_PREPARED, S.CARD_PROD_READY),
        (S.CARD_PROD_READY, S.CARD_PROD_ONGOING),
        (S.CARD_PROD_ONGOING, S.CARD_PROD_DONE),
        (S.CARD_PROD_DONE, S.CARD_SHIPPED),
    ]
    assert not TRANSITIONS[order.production_status]
