"""The issuer kit reads `details.container` (our extension) and ignores what it does not know."""

from __future__ import annotations

from datetime import UTC, datetime

from issuance.contract.operations import Operation
from issuance.domain.containers import ContainerRef, ContainerStatus
from issuance.domain.orders import Order
from issuance.kit.store import Incoming


def test_a_bulk_operation_round_trips_through_the_kit_with_its_container() -> None:
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    order = Order(
        operation_id="op-1",
        issuer_id="DEMOBANK01",
        card_id="card-1",
        start_time=at,
        container=ContainerRef("box-1", "dispatch-1", ContainerStatus.IN_TRANSIT, "dhl", "JD01"),
    )
    raw = order.operation(sequence=3)
    raw["details"]["container"]["futureField"] = "kept raw, ignored parsed"

    incoming = Incoming.of(raw)

    container = incoming.operation.details.container
    assert container is not None
    assert (container.group_id, container.order_id, container.status) == (
        "box-1",
        "dispatch-1",
        "IN_TRANSIT",
    )
    assert (container.carrier, container.tracking_number) == ("dhl", "JD01")
    assert incoming.raw["details"]["container"]["futureField"] == "kept raw, ignored parsed"
    assert (
        Operation.model_validate({**raw, "details": {"status": "CARD_SHIPPED"}}).details.container
        is None
    )
