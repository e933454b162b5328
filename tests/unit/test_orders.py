"""The Order aggregate, machine by machine: production steps, holds, shipment, SLA standing.

Each transition table is walked pair by pair: every pair the table allows is applied to an order
brought to its source by a legal path and must record its event; every other pair must raise
and leave the order exactly as it was (all fields, all events).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import pytest

from issuance.domain.errors import Conflict, IllegalTransition
from issuance.domain.events import EventKind, OrderEvent
from issuance.domain.orders import Order
from issuance.domain.sla import SlaStanding
from issuance.domain.statuses import (
    HOLD_TRANSITIONS,
    HOLDABLE,
    SHIPMENT_TRANSITIONS,
    TRANSITIONS,
    WHILE_HELD,
    Hold,
    OperationStatus,
    ProductionStatus,
    ShipmentStatus,
    is_final,
    operation_status,
)
from tests.unit.builders import SHIPMENT, accepted_order, at, order_at, state_of

S = ProductionStatus
LATER = at(12, 30, 15, 250_000)  # after every step `order_at` takes
LATER_ISO = "2025-01-17T12:30:15.250Z"


def _pairs(
    table: Mapping[Any, frozenset[Any]], targets: Iterable[Any], *, allowed: bool
) -> list[Any]:
    """Every (source, target) pair, source a row of `table`, that the table allows (or not)."""
    return [
        pytest.param(source, target, id=f"{source or 'not-shipped'}->{target}")
        for source, target in itertools.product(table, targets)
        if (target in table[source]) is allowed
    ]


def _only_new_event(order: Order, before: dict[str, Any]) -> OrderEvent:
    """The one event the change recorded; the earlier ones must be untouched."""
    assert order.events[:-1] == before["events"]
    assert order.updated_at == LATER
    event = order.events[-1]
    assert (event.operation_id, event.occurred_at) == ("op-1", LATER)
    assert event.operation == order.operation()
    return event


def _failing(target: ProductionStatus) -> bool:
    return operation_status(target) is OperationStatus.FAILED or target is S.CARD_PROD_EXCEPTION


# --- acceptance -------------------------------------------------------------------------------


def test_accept_starts_at_requested_pending_with_its_event() -> None:
    order = accepted_order(issuer_request_id="req-1", card_product_id="DEMO-DEBIT")

    assert (order.production_status, order.status) == (
        S.CARD_PROD_REQUESTED,
        OperationStatus.PENDING,
    )
    assert (order.hold, order.shipment, order.end_time) == (Hold.NONE, None, None)
    assert order.events == [
        OrderEvent(
            EventKind.ACCEPTED,
            "op-1",
            at(9),
            {
                "operationId": "op-1",
                "operation": "PRODUCE",
                "status": "PENDING",
                "startTime": "2025-01-17T09:00:00.000Z",
                "cardId": "card-1",
                "details": {"status": "CARD_PROD_REQUESTED", "issuerRequestId": "req-1"},
                "issuerRequestId": "req-1",
            },
        )
    ]


def test_an_event_snapshot_does_not_follow_later_changes() -> None:
    order = accepted_order()
    snapshot = copy.deepcopy(order.events[0].operation)

    order.move_to(S.DATA_PREPARED, at=at(10))
    order.put_on_hold(Hold.ISSUER, at=at(11), reason="fraud review")

    assert order.events[0].operation == snapshot


# --- production steps, every pair of the table -----------------------------------------------

ALLOWED_STEPS = _pairs(TRANSITIONS, S, allowed=True)
FORBIDDEN_STEPS = _pairs(TRANSITIONS, S, allowed=False)


def _step(order: Order, target: ProductionStatus, **kwargs: Any) -> None:
    shipment = SHIPMENT if target is S.CARD_SHIPPED else None
    order.move_to(target, at=LATER, shipment=shipment, **kwargs)


@pytest.mark.parametrize(("source", "target"), ALLOWED_STEPS)
def test_allowed_step_applies_and_records_it(source: S, target: S) -> None:
    order = order_at(source)
    before = state_of(order)
    order.check_move(target)  # the services' pre-check agrees, and changes nothing
    assert state_of(order) == before

    _step(order, target, reason="why")

    event = _only_new_event(order, before)
    assert event.kind is EventKind.STATUS_CHANGED
    assert order.production_status is target
    assert event.operation["details"]["status"] == target.value
    assert event.operation["status"] == operation_status(target).value
    assert event.operation["details"]["reason"] == "why"
    if is_final(target):
        assert (order.end_time, event.operation["endTime"]) == (LATER, LATER_ISO)
    else:
        assert (order.end_time, event.operation.get("endTime")) == (None, None)
    if _failing(target):  # the step's name by default, the reason as the message
        assert (order.error_code, order.error) == (target.value, "why")
        assert (event.operation["errorCode"], event.operation["error"]) == (target.value, "why")
    else:  # none, or cleared when production resumes
        assert (order.error_code, order.error) == (None, None)
        assert "errorCode" not in event.operation
        assert "error" not in event.operation


@pytest.mark.parametrize(("source", "target"), ALLOWED_STEPS)
def test_allowed_step_honours_a_given_error_code_only_when_failing(source: S, target: S) -> None:
    order = order_at(source)

    _step(order, target, reason="why", error_code="OUT_OF_STOCK", error="no chip left")

    expected = ("OUT_OF_STOCK", "no chip left") if _failing(target) else (None, None)
    assert (order.error_code, order.error) == expected
    operation = order.events[-1].operation
    assert (operation.get("errorCode"), operation.get("error")) == expected


@pytest.mark.parametrize(("source", "target"), FORBIDDEN_STEPS)
def test_forbidden_step_raises_and_changes_nothing(source: S, target: S) -> None:
    order = order_at(source)
    before = state_of(order)

    with pytest.raises(IllegalTransition) as raised:
        _step(order, target, reason="after", error_code="AFTER", error="after")
    with pytest.raises(IllegalTransition) as checked:
        order.check_move(target)

    assert state_of(order) == before
    assert (raised.value.code, raised.value.field) == (
        "ILLEGAL_STATUS_TRANSITION",
        "details.status",
    )
    assert f"from {source} to {target}" in raised.value.message
    assert (checked.value.code, checked.value.message) == (raised.value.code, raised.value.message)


def test_an_illegal_step_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        order_at(S.CARD_SHIPPED).move_to(S.DATA_PREPARED, at=LATER)


@pytest.mark.parametrize(
    "detour", [S.DATA_PREPARED, S.CARD_PROD_READY, S.CARD_PROD_ONGOING], ids=str
)
def test_resuming_after_an_exception_clears_its_error(detour: S) -> None:
    order = order_at(detour)
    order.move_to(S.CARD_PROD_EXCEPTION, at=at(11), reason="no chip", error_code="OUT_OF_STOCK")
    assert order.operation()["errorCode"] == "OUT_OF_STOCK"

    order.move_to(S.CARD_PROD_READY, at=LATER)

    assert (order.error_code, order.error, order.reason) == (None, None, None)
    operation = order.operation()
    assert (operation["status"], operation["details"]) == ("PENDING", {"status": "CARD_PROD_READY"})
    assert {"errorCode", "error", "endTime"}.isdisjoint(operation)


def test_a_spoiled_card_is_made_again_and_shipped() -> None:
    order = order_at(S.CARD_PROD_ONGOING)

    for minute, step in enumerate(
        [S.CARD_PROD_EXCEPTION, S.CARD_PROD_READY, S.CARD_PROD_ONGOING, S.CARD_PROD_DONE]
    ):
        order.move_to(step, at=at(11, minute))
    order.move_to(S.CARD_SHIPPED, at=LATER, shipment=SHIPMENT)

    assert (order.status, order.end_time, order.error_code) == (
        OperationStatus.SUCCESSFUL,
        LATER,
        None,
    )


# --- shipping ---------------------------------------------------------------------------------


def test_shipping_without_a_shipment_is_refused_and_changes_nothing() -> None:
    order = order_at(S.CARD_PROD_DONE)
    before = state_of(order)

    with pytest.raises(IllegalTransition) as raised:
        order.move_to(S.CARD_SHIPPED, at=LATER)

    assert state_of(order) == before
    assert raised.value.field == "shipment.carrier"


@pytest.mark.parametrize("given", list(ShipmentStatus), ids=str)
def test_shipping_starts_the_shipment_in_transit(given: ShipmentStatus) -> None:
    order = order_at(S.CARD_PROD_DONE)

    order.move_to(S.CARD_SHIPPED, at=LATER, shipment=replace(SHIPMENT, status=given))

    assert order.shipment == SHIPMENT
    assert order.events[-1].operation["details"]["shipment"] == {
        "carrier": "laposte-lettre",
        "trackingNumber": "1A00000000001",
        "trackingUrl": "https://tracking.example/1A00000000001",
        "status": "IN_TRANSIT",
    }


@pytest.mark.parametrize(
    ("source", "target"),
    [pair for pair in ALLOWED_STEPS if pair.values[1] is not S.CARD_SHIPPED],
)
def test_only_a_shipped_order_has_a_shipment(source: S, target: S) -> None:
    order = order_at(source)
    before = state_of(order)

    with pytest.raises(IllegalTransition):
        order.move_to(target, at=LATER, shipment=SHIPMENT)

    assert state_of(order) == before
    assert order.shipment is None
    assert "shipment" not in order.operation()["details"]


# --- holds: every pair of the hold table at every step ----------------------------------------

REACHABLE_HOLDS = [
    (hold, status)
    for hold, status in itertools.product(Hold, S)
    if hold is Hold.NONE or status in HOLDABLE  # a held order always sits at a holdable step
]


def _hold_cases(*, allowed: bool) -> list[Any]:
    return [
        pytest.param(current, target, status, id=f"{current}->{target}@{status}")
        for (current, status), target in itertools.product(REACHABLE_HOLDS, Hold)
        if (target in HOLD_TRANSITIONS[current] and (target is Hold.NONE or status in HOLDABLE))
        is allowed
    ]


def _change_hold(order: Order, target: Hold) -> None:
    """Releasing is the move to NONE; any other move is a hold by `target`."""
    if target is Hold.NONE:
        order.release(at=LATER)
    else:
        order.put_on_hold(target, at=LATER, reason="quality check")


@pytest.mark.parametrize(("current", "target", "status"), _hold_cases(allowed=True))
def test_allowed_hold_change_applies_and_records_it(current: Hold, target: Hold, status: S) -> None:
    order = order_at(status, hold=current)
    before = state_of(order)

    _change_hold(order, target)

    event = _only_new_event(order, before)
    assert order.hold is target
    assert order.production_status is status
    if target is Hold.NONE:
        assert (event.kind, order.reason) == (EventKind.RELEASED, None)
        assert "onHold" not in event.operation["details"]
    else:
        assert (event.kind, order.reason) == (EventKind.HELD, "quality check")
        assert event.operation["details"]["onHold"] == target.value


@pytest.mark.parametrize(("current", "target", "status"), _hold_cases(allowed=False))
def test_forbidden_hold_change_raises_and_changes_nothing(
    current: Hold, target: Hold, status: S
) -> None:
    order = order_at(status, hold=current)
    before = state_of(order)

    with pytest.raises(IllegalTransition) as raised:
        _change_hold(order, target)

    assert state_of(order) == before
    assert raised.value.field == "hold"


@pytest.mark.parametrize(
    ("current", "status"),
    [pytest.param(hold, status, id=f"{hold}@{status}") for hold, status in REACHABLE_HOLDS],
)
def test_holding_by_nobody_is_refused(current: Hold, status: S) -> None:
    order = order_at(status, hold=current)
    before = state_of(order)

    with pytest.raises(IllegalTransition):
        order.put_on_hold(Hold.NONE, at=LATER, reason="by nobody")

    assert state_of(order) == before


def _while_held(expected: str) -> list[Any]:
    """Every step tried from every held state whose outcome is `expected`: "allowed", "on hold"
    (legal in the table, refused because of the hold) or "illegal" (not in the table)."""

    def outcome(source: S, target: S) -> str:
        if target not in TRANSITIONS[source]:
            return "illegal"
        return "allowed" if target in WHILE_HELD else "on hold"

    holdable = [status for status in S if status in HOLDABLE]
    return [
        pytest.param(hold, source, target, id=f"{hold}@{source}->{target}")
        for hold, source, target in itertools.product([Hold.BUREAU, Hold.ISSUER], holdable, S)
        if outcome(source, target) == expected
    ]


@pytest.mark.parametrize(("hold", "source", "target"), _while_held("allowed"))
def test_a_held_order_may_still_end_and_that_clears_the_hold(
    hold: Hold, source: S, target: S
) -> None:
    order = order_at(source, hold=hold)
    before = state_of(order)

    _step(order, target, reason="cancelled while held")

    event = _only_new_event(order, before)
    assert (event.kind, order.production_status, order.hold) == (
        EventKind.STATUS_CHANGED,
        target,
        Hold.NONE,
    )
    assert (order.end_time, order.reason) == (LATER, "cancelled while held")
    assert "onHold" not in event.operation["details"]


@pytest.mark.parametrize(("hold", "source", "target"), _while_held("on hold"))
def test_a_held_order_makes_no_other_step(hold: Hold, source: S, target: S) -> None:
    order = order_at(source, hold=hold)
    before = state_of(order)

    with pytest.raises(IllegalTransition) as raised:
        _step(order, target)
    with pytest.raises(IllegalTransition) as checked:
        order.check_move(target)

    assert state_of(order) == before
    assert (raised.value.code, raised.value.field) == ("ORDER_ON_HOLD", "details.status")
    assert checked.value.code == "ORDER_ON_HOLD"


@pytest.mark.parametrize(("hold", "source", "target"), _while_held("illegal"))
def test_a_held_order_is_refused_an_illegal_step_as_illegal(
    hold: Hold, source: S, target: S
) -> None:
    order = order_at(source, hold=hold)
    before = state_of(order)

    with pytest.raises(IllegalTransition) as raised:
        _step(order, target)

    assert state_of(order) == before
    assert raised.value.code == "ILLEGAL_STATUS_TRANSITION"


def test_a_released_order_moves_on() -> None:
    order = order_at(S.CARD_PROD_READY, hold=Hold.BUREAU)
    order.release(at=at(11))

    order.move_to(S.CARD_PROD_ONGOING, at=LATER)

    assert (order.production_status, order.hold) == (S.CARD_PROD_ONGOING, Hold.NONE)


# --- shipment: every pair of the shipment table -----------------------------------------------


def _shipped_order(current: ShipmentStatus | None) -> Order:
    """`None`: ready to ship, not shipped yet."""
    if current is None:
        return order_at(S.CARD_PROD_DONE)
    return order_at(S.CARD_SHIPPED, shipment_status=current)


@pytest.mark.parametrize(
    ("current", "target"), _pairs(SHIPMENT_TRANSITIONS, ShipmentStatus, allowed=True)
)
def test_allowed_shipment_change_applies_and_records_it(
    current: ShipmentStatus | None, target: ShipmentStatus
) -> None:
    order = _shipped_order(current)
    before = state_of(order)

    if current is None:  # the shipment starts with the CARD_SHIPPED step
        order.move_to(S.CARD_SHIPPED, at=LATER, shipment=replace(SHIPMENT, status=target))
        kind = EventKind.STATUS_CHANGED
    else:
        order.update_shipment(target, at=LATER, message="carrier report")
        kind = EventKind.SHIPMENT_UPDATED

    event = _only_new_event(order, before)
    assert event.kind is kind
    assert order.shipment is not None
    assert order.shipment.status is target
    assert event.operation["details"]["shipment"]["status"] == target.value
    assert (order.shipment.carrier, order.shipment.tracking_number) == (
        SHIPMENT.carrier,
        SHIPMENT.tracking_number,
    )
    assert (order.production_status, order.status) == (S.CARD_SHIPPED, OperationStatus.SUCCESSFUL)
    if current is not None:
        assert event.operation["details"]["shipment"]["message"] == "carrier report"
        assert order.end_time == before["end_time"]  # the operation ended when it was shipped


@pytest.mark.parametrize(
    ("current", "target"), _pairs(SHIPMENT_TRANSITIONS, ShipmentStatus, allowed=False)
)
def test_forbidden_shipment_change_raises_and_changes_nothing(
    current: ShipmentStatus | None, target: ShipmentStatus
) -> None:
    order = _shipped_order(current)
    before = state_of(order)

    with pytest.raises(IllegalTransition) as raised:
        order.update_shipment(target, at=LATER, message="carrier report")

    assert state_of(order) == before
    assert raised.value.field == "details.shipment.status"


@pytest.mark.parametrize(
    ("status", "target"),
    [
        pytest.param(status, target, id=f"{status}->{target}")
        for status, target in itertools.product(S, ShipmentStatus)
        if status is not S.CARD_SHIPPED
    ],
)
def test_no_shipment_update_before_shipping(status: S, target: ShipmentStatus) -> None:
    order = order_at(status)
    before = state_of(order)

    with pytest.raises(IllegalTransition):
        order.update_shipment(target, at=LATER)

    assert state_of(order) == before


def test_a_returned_card_is_shipped_again_with_a_new_tracking_number() -> None:
    order = order_at(S.CARD_SHIPPED, shipment_status=ShipmentStatus.RETURNED)

    order.update_shipment(ShipmentStatus.IN_TRANSIT, at=LATER, tracking_number="1A00000000002")

    assert order.events[-1].operation["details"]["shipment"] == {
        "carrier": "laposte-lettre",
        "trackingNumber": "1A00000000002",
        "trackingUrl": "https://tracking.example/1A00000000001",
        "status": "IN_TRANSIT",
    }
    order.update_shipment(ShipmentStatus.DELIVERED, at=at(13))
    assert order.operation()["details"]["shipment"]["status"] == "DELIVERED"


# --- SLA standing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "standing"),
    [
        pytest.param(previous, standing, id=f"{previous or 'unmarked'}->{standing}")
        for previous, standing in itertools.product([None, *SlaStanding], SlaStanding)
    ],
)
def test_mark_sla_records_an_event_only_when_the_standing_changes(
    previous: SlaStanding | None, standing: SlaStanding
) -> None:
    order = order_at(S.CARD_PROD_READY)
    if previous is not None:
        order.mark_sla(previous, at=at(11))
    before = state_of(order)

    order.mark_sla(standing, at=LATER)

    if standing == previous:
        assert state_of(order) == before
    else:
        event = _only_new_event(order, before)
        assert event.kind is EventKind.SLA_STANDING_CHANGED
        assert event.operation["details"]["slaStanding"] == standing.value
        assert order.production_status is S.CARD_PROD_READY
