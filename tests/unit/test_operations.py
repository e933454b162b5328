"""The D1 operation object: field names, omitted optionals, ISO UTC times with milliseconds, and
our additive extensions (shipment, onHold, slaStanding, cancellableUntil) shown only when set."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from issuance.domain.operations import iso_utc, operation_object
from issuance.domain.orders import Order, Shipment
from issuance.domain.sla import SlaStanding
from issuance.domain.statuses import (
    HOLDABLE,
    Hold,
    ProductionStatus,
    ShipmentStatus,
    is_cancellable,
)
from tests.unit.builders import SHIPMENT, at, order_at

S = ProductionStatus
EXTENSIONS = {"shipment", "onHold", "slaStanding", "cancellableUntil"}

ISO_MILLIS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _values(tree: Any) -> list[Any]:
    if isinstance(tree, dict):
        return [v for value in tree.values() for v in [value, *_values(value)]]
    return []


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (at(6, 28, 2, 492_000), "2025-01-17T06:28:02.492Z"),
        (at(6, 28, 2), "2025-01-17T06:28:02.000Z"),
        (at(6, 28, 2, 492_999), "2025-01-17T06:28:02.492Z"),  # truncated, not rounded
        (
            datetime(2025, 1, 17, 7, 28, 2, 492_000, tzinfo=timezone(timedelta(hours=1))),
            "2025-01-17T06:28:02.492Z",
        ),
        (
            datetime(2024, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5))),
            "2025-01-01T01:00:00.000Z",
        ),
    ],
)
def test_iso_utc_is_utc_with_milliseconds_and_z(moment: datetime, expected: str) -> None:
    assert iso_utc(moment) == expected


def test_a_new_order_carries_only_the_mandatory_fields() -> None:
    order = Order.accept(operation_id="op-1", issuer_id="DEMOBANK01", card_id="card-1", at=at(9))

    assert operation_object(order) == {
        "operationId": "op-1",
        "operation": "PRODUCE",
        "status": "PENDING",
        "startTime": "2025-01-17T09:00:00.000Z",
        "cardId": "card-1",
        "details": {"status": "CARD_PROD_REQUESTED"},
    }


@pytest.mark.parametrize("status", list(ProductionStatus), ids=str)
def test_no_field_is_ever_null(status: ProductionStatus) -> None:
    order = order_at(status)

    assert None not in _values(operation_object(order))


@pytest.mark.parametrize("status", list(ProductionStatus), ids=str)
def test_extensions_are_absent_until_set(status: ProductionStatus) -> None:
    details = order_at(status).operation()["details"]

    expected = {"shipment"} if status is S.CARD_SHIPPED else set()
    assert EXTENSIONS & set(details) == expected


def test_a_full_order_carries_its_optional_fields_under_d1_names() -> None:
    order = Order.accept(
        operation_id="op-1",
        issuer_id="DEMOBANK01",
        card_id="card-1",
        at=at(9, 0, 0, 123_000),
        issuer_request_id="req-1",
        consumer_id="consumer-1",
        card_product_id="DEMO-DEBIT",
        input_file_name="batch-001.json",
        due_date=at(17),
        production_site="PC-PARIS",
    )
    order.move_to(ProductionStatus.DATA_EXCEPTION, at=at(9, 30), error_code="E42", error="bad data")

    operation = operation_object(order, sequence=2)

    assert operation["startTime"] == "2025-01-17T09:00:00.123Z"
    assert operation["endTime"] == "2025-01-17T09:30:00.000Z"
    assert operation["status"] == "FAILED"
    assert operation["errorCode"] == "E42"
    assert operation["error"] == "bad data"
    assert operation["issuerRequestId"] == "req-1"
    assert operation["inputFileName"] == "batch-001.json"
    assert operation["sequence"] == 2
    assert operation["details"] == {
        "status": "DATA_EXCEPTION",
        "dueDate": "2025-01-17T17:00:00.000Z",
        "productionSite": "PC-PARIS",
        "inputFileName": "batch-001.json",
        "issuerRequestId": "req-1",
    }


def test_internal_fields_stay_out_of_the_operation() -> None:
    order = Order.accept(
        operation_id="op-1",
        issuer_id="DEMOBANK01",
        card_id="card-1",
        at=at(9),
        consumer_id="consumer-1",
        card_product_id="DEMO-DEBIT",
        priority="EXPRESS",
        materials=("CHIP-EMV-DUAL",),
    )

    flat = str(operation_object(order))

    assert "DEMOBANK01" not in flat
    assert "consumer-1" not in flat
    assert "DEMO-DEBIT" not in flat
    assert "EXPRESS" not in flat
    assert "CHIP-EMV-DUAL" not in flat


def test_sequence_is_omitted_unless_given() -> None:
    order = Order.accept(operation_id="op-1", issuer_id="DEMOBANK01", card_id="card-1", at=at(9))

    assert "sequence" not in order.operation()
    assert order.operation(sequence=0)["sequence"] == 0


def test_every_time_in_the_operation_is_iso_millis_z() -> None:
    order = Order.accept(
        operation_id="op-1",
        issuer_id="DEMOBANK01",
        card_id="card-1",
        at=datetime(2025, 3, 30, 3, 15, 9, 870_001, tzinfo=timezone(timedelta(hours=2))),
        due_date=datetime(2025, 3, 31, 17, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    order.move_to(ProductionStatus.CARD_PROD_CANCELED, at=at(12))

    operation = operation_object(order)
    times = [operation["startTime"], operation["endTime"], operation["details"]["dueDate"]]

    assert all(ISO_MILLIS_Z.match(t) for t in times), times
    assert operation["startTime"] == "2025-03-30T01:15:09.870Z"


def test_an_order_with_every_extension_set() -> None:
    order = order_at(
        S.CARD_PROD_READY,
        input_file_name="batch-001.json",
        cancellable_until=at(17, 30),
        due_date=at(18),
    )
    order.mark_sla(SlaStanding.AT_RISK, at=at(15))
    order.put_on_hold(Hold.ISSUER, at=at(16), reason="fraud review")

    assert order.operation(sequence=7) == {
        "operationId": "op-1",
        "operation": "PRODUCE",
        "status": "PENDING",
        "startTime": "2025-01-17T09:00:00.000Z",
        "cardId": "card-1",
        "inputFileName": "batch-001.json",
        "sequence": 7,
        "details": {
            "status": "CARD_PROD_READY",
            "reason": "fraud review",
            "dueDate": "2025-01-17T18:00:00.000Z",
            "inputFileName": "batch-001.json",
            "onHold": "ISSUER",
            "slaStanding": "AT_RISK",
            "cancellableUntil": "2025-01-17T17:30:00.000Z",
        },
    }


@pytest.mark.parametrize("status", list(ProductionStatus), ids=str)
def test_cancellable_until_shows_only_while_cancellation_is_possible(
    status: ProductionStatus,
) -> None:
    details = order_at(status, cancellable_until=at(17, 30)).operation()["details"]

    if is_cancellable(status):
        assert details["cancellableUntil"] == "2025-01-17T17:30:00.000Z"
    else:
        assert "cancellableUntil" not in details


@pytest.mark.parametrize(
    ("hold", "status"),
    [
        pytest.param(hold, status, id=f"{hold}@{status}")
        for hold in Hold
        for status in ProductionStatus
        if status in HOLDABLE
    ],
)
def test_on_hold_shows_only_while_held(hold: Hold, status: ProductionStatus) -> None:
    order = order_at(status, hold=hold)

    if hold is Hold.NONE:
        assert "onHold" not in order.operation()["details"]
    else:
        assert order.operation()["details"]["onHold"] == hold.value
        order.release(at=at(11))
        assert "onHold" not in order.operation()["details"]


def test_sla_standing_shows_once_marked() -> None:
    order = order_at(S.DATA_PREPARED)
    assert "slaStanding" not in order.operation()["details"]

    order.mark_sla(SlaStanding.LATE, at=at(19))

    assert order.operation()["details"]["slaStanding"] == "LATE"


def test_a_shipment_leaves_out_what_the_carrier_did_not_give() -> None:
    order = order_at(S.CARD_PROD_DONE)

    order.move_to(S.CARD_SHIPPED, at=at(12), shipment=Shipment(carrier="colissimo"))

    assert order.operation()["details"]["shipment"] == {
        "carrier": "colissimo",
        "status": "IN_TRANSIT",
    }


def test_a_shipment_carries_the_carrier_message_under_d1_names() -> None:
    order = order_at(S.CARD_SHIPPED, shipment_status=ShipmentStatus.UNDELIVERABLE)

    order.update_shipment(ShipmentStatus.RETURNED, at=at(12), message="addressee unknown")

    assert order.operation()["details"]["shipment"] == {
        "carrier": SHIPMENT.carrier,
        "trackingNumber": SHIPMENT.tracking_number,
        "trackingUrl": SHIPMENT.tracking_url,
        "status": "RETURNED",
        "message": "addressee unknown",
    }


def test_the_production_batch_is_an_extension_beside_the_issuers_file_name() -> None:
    order = Order.accept(
        operation_id="op-1",
        issuer_id="DEMOBANK01",
        card_id="card-1",
        at=at(9),
        input_file_name="portfolio.jsonl",
    )
    order.production_batch = "PC-PARIS_DEMO-DEBIT_STANDARD_20250117-1500.json"

    operation = operation_object(order)

    assert operation["inputFileName"] == operation["details"]["inputFileName"] == "portfolio.jsonl"
    assert operation["details"]["productionBatch"] == order.production_batch
    assert "productionBatch" not in operation  # only in details, where D1 keeps production data
