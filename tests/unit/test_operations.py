"""The D1 operation object: field names, omitted optionals, ISO UTC times with milliseconds."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from issuance.domain.operations import iso_utc, operation_object
from issuance.domain.orders import Order
from issuance.domain.statuses import ProductionStatus
from tests.unit.builders import at

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


def test_no_field_is_ever_null() -> None:
    order = Order.accept(operation_id="op-1", issuer_id="DEMOBANK01", card_id="card-1", at=at(9))
    order.move_to(ProductionStatus.DATA_PREPARED, at=at(10))

    assert None not in _values(operation_object(order))


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
    )

    flat = str(operation_object(order))

    assert "DEMOBANK01" not in flat
    assert "consumer-1" not in flat
    assert "DEMO-DEBIT" not in flat


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
