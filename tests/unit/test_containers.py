"""The container transition table, move by move, and a card's hand-over at the branch."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from issuance.domain.containers import (
    CARD_SHIPMENT,
    CARRIER_REPORTS,
    CONTAINER_TRANSITIONS,
    Container,
    ContainerRef,
    ContainerStatus,
    container_of_request,
)
from issuance.domain.errors import IllegalTransition
from issuance.domain.orders import Order, Shipment
from issuance.domain.statuses import SHIPMENT_TRANSITIONS, ProductionStatus, ShipmentStatus

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
_C = ContainerStatus


def _container(status: ContainerStatus = _C.OPEN) -> Container:
    return Container(issuer_id="DEMOBANK01", group_id="box-1", created_at=NOW, status=status)


def test_the_table_by_hand() -> None:
    assert {
        _C.OPEN: {_C.IN_TRANSIT},
        _C.IN_TRANSIT: {_C.RECEIVED_AT_BRANCH, _C.UNDELIVERABLE, _C.RETURNED},
        _C.UNDELIVERABLE: {_C.RETURNED},
        _C.RETURNED: {_C.IN_TRANSIT},
        _C.RECEIVED_AT_BRANCH: set(),
    } == CONTAINER_TRANSITIONS


def test_every_container_move_is_a_legal_move_of_each_card_shipment() -> None:
    """Cards follow their container: each container move must be one their shipment can make."""
    for source, targets in CONTAINER_TRANSITIONS.items():
        for target in targets:
            card_before = CARD_SHIPMENT.get(source)  # OPEN: the card is not shipped yet
            assert CARD_SHIPMENT[target] in SHIPMENT_TRANSITIONS[card_before], (source, target)


def _apply(container: Container, target: ContainerStatus) -> None:
    if target is _C.IN_TRANSIT:
        container.ship(carrier="dhl", tracking_number="JD01", tracking_url=None, at=NOW)
    elif target is _C.RECEIVED_AT_BRANCH:
        container.receive(at=NOW, message=None)
    else:
        container.report(target, at=NOW, message="carrier says so")


@pytest.mark.parametrize(
    ("source", "target"), list(itertools.product(ContainerStatus, ContainerStatus))
)
def test_each_move_is_applied_or_refused_by_the_table(
    source: ContainerStatus, target: ContainerStatus
) -> None:
    container = _container(source)
    if target is _C.OPEN:
        return  # no action leads back to OPEN
    if target in CONTAINER_TRANSITIONS[source]:
        _apply(container, target)
        assert (container.status, container.updated_at) == (target, NOW)
    else:
        with pytest.raises(IllegalTransition) as refused:
            _apply(container, target)
        assert (refused.value.code, refused.value.field) == (
            "ILLEGAL_CONTAINER_TRANSITION",
            "status",
        )
        assert container.status is source
        assert container.updated_at is None


def test_shipping_records_the_tracking_and_a_reshipment_replaces_it() -> None:
    container = _container()
    container.ship(carrier="dhl", tracking_number="JD01", tracking_url="https://t/JD01", at=NOW)
    assert (container.carrier, container.tracking_number, container.shipped_at) == (
        "dhl",
        "JD01",
        NOW,
    )
    container.report(_C.RETURNED, at=NOW, message="refused by the branch")
    later = NOW + timedelta(days=1)
    container.ship(carrier="ups", tracking_number="1Z02", tracking_url=None, at=later)
    assert (container.carrier, container.tracking_number, container.tracking_url) == (
        "ups",
        "1Z02",
        None,
    )
    assert (container.shipped_at, container.message) == (later, None)


def test_a_carrier_report_is_only_undeliverable_or_returned() -> None:
    assert {_C.UNDELIVERABLE, _C.RETURNED} == CARRIER_REPORTS
    container = _container(_C.IN_TRANSIT)
    with pytest.raises(IllegalTransition):
        container.report(_C.RECEIVED_AT_BRANCH, at=NOW, message=None)  # the branch's word only
    assert container.status is _C.IN_TRANSIT


def _bulk_order(container: ContainerRef, shipment: ShipmentStatus | None) -> Order:
    return Order(
        operation_id="op-1",
        issuer_id="DEMOBANK01",
        card_id="card-1",
        start_time=NOW,
        production_status=ProductionStatus.CARD_SHIPPED
        if shipment
        else ProductionStatus.CARD_PROD_DONE,
        shipment=Shipment("dhl", "JD01", status=shipment) if shipment else None,
        container=container,
    )


def test_a_card_is_handed_over_once_after_the_branch_received_it() -> None:
    received = ContainerRef("box-1", "dispatch-1", _C.RECEIVED_AT_BRANCH, "dhl", "JD01")
    order = _bulk_order(received, ShipmentStatus.DELIVERED)
    order.hand_to_cardholder(at=NOW)
    details = order.operation()["details"]
    assert details["container"] == {
        "groupId": "box-1",
        "orderId": "dispatch-1",
        "status": "RECEIVED_AT_BRANCH",
        "carrier": "dhl",
        "trackingNumber": "JD01",
        "handedToCardholderAt": "2026-12-03T09:00:00.000Z",
    }
    assert [e.kind.value for e in order.events] == ["order.handed_to_cardholder"]
    with pytest.raises(IllegalTransition):
        order.hand_to_cardholder(at=NOW)  # twice
    assert len(order.events) == 1


@pytest.mark.parametrize("status", [_C.OPEN, _C.IN_TRANSIT, _C.RETURNED])
def test_no_hand_over_before_the_branch_has_the_card(status: ContainerStatus) -> None:
    shipment = CARD_SHIPMENT.get(status)
    order = _bulk_order(ContainerRef("box-1", status=status), shipment)
    with pytest.raises(IllegalTransition) as refused:
        order.hand_to_cardholder(at=NOW)
    assert refused.value.code == "ILLEGAL_CONTAINER_TRANSITION"
    assert order.events == []
    assert order.container is not None
    assert order.container.handed_to_cardholder_at is None


def test_an_individual_card_has_no_hand_over_and_no_container_in_its_operation() -> None:
    order = Order(operation_id="op-2", issuer_id="DEMOBANK01", card_id="card-2", start_time=NOW)
    assert "container" not in order.operation()["details"]
    with pytest.raises(IllegalTransition) as refused:
        order.hand_to_cardholder(at=NOW)
    assert refused.value.code == "NOT_IN_CONTAINER"


def test_the_container_a_request_names() -> None:
    bulk = {"type": "BULK", "groupId": "box-1", "orderId": "dispatch-1", "deliveryAddress": {}}
    assert container_of_request(bulk) == ContainerRef("box-1", "dispatch-1")
    assert container_of_request({**bulk, "orderId": None}) == ContainerRef("box-1")
    assert container_of_request({**bulk, "type": "INDIVIDUAL"}) is None
    assert container_of_request(None) is None


def test_the_readme_diagram_is_the_table() -> None:
    """The README draws the container moves by hand: it must draw exactly the table's."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Bulk shipments and containers", 1)[1].split("```", 2)[1]
    drawn = {
        (ContainerStatus(source), ContainerStatus(target.split(":")[0].strip()))
        for source, target in re.findall(r"^\s*(\w+) --> (\w+(?::.*)?)$", section, re.MULTILINE)
        if source != "[*]"
    }
    table = {(s, t) for s, targets in CONTAINER_TRANSITIONS.items() for t in targets}
    assert drawn == table
