"""The D1 operation object: what notifications and the on-demand API say about an order.

Notifications and `productionStatus` carry the same object. Times are ISO 8601 UTC with
milliseconds and a `Z`, as in D1's examples (`2025-01-17T06:28:02.492Z`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from issuance.domain.statuses import is_cancellable

if TYPE_CHECKING:
    from issuance.domain.orders import Order

OPERATION_PRODUCE = "PRODUCE"


def iso_utc(moment: datetime) -> str:
    """`2025-01-17T06:28:02.492Z`: UTC, milliseconds, `Z` suffix.

    A naive datetime is refused rather than read as the machine's local time.
    """
    if moment.tzinfo is None:
        raise ValueError("times must carry a time zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def operation_object(order: Order, *, sequence: int | None = None) -> dict[str, Any]:
    """The operation in D1's shape; absent optional fields are left out, never null.

    `sequence` is our extension (the per-card event counter), like `details.onHold`,
    `details.slaStanding`, `details.cancellableUntil`, `details.productionBatch`,
    `details.sensitiveDataPurgedAt` and `details.container` (a BULK card's container and its
    tracking):
    additive, so a D1 receiver that does not know them ignores them.
    """
    details: dict[str, Any] = {"status": order.production_status.value}
    optional_details = {
        "reason": order.reason,
        "dueDate": iso_utc(order.due_date) if order.due_date else None,
        "productionSite": order.production_site,
        "shipment": _shipment(order),
        "inputFileName": order.input_file_name,
        "issuerRequestId": order.issuer_request_id,
        # our extensions, additive:
        "onHold": order.hold.value if order.hold.value != "NONE" else None,
        "slaStanding": order.sla_standing,
        "cancellableUntil": _cancellable_until(order),
        "productionBatch": order.production_batch,
        "sensitiveDataPurgedAt": (
            iso_utc(order.sensitive_data_purged_at) if order.sensitive_data_purged_at else None
        ),
        "container": _container(order),
    }
    details.update({k: v for k, v in optional_details.items() if v is not None})
    operation: dict[str, Any] = {
        "operationId": order.operation_id,
        "operation": OPERATION_PRODUCE,
        "status": order.status.value,
        "startTime": iso_utc(order.start_time),
        "cardId": order.card_id,
        "details": details,
    }
    optional = {
        "endTime": iso_utc(order.end_time) if order.end_time else None,
        "errorCode": order.error_code,
        "error": order.error,
        "inputFileName": order.input_file_name,
        "issuerRequestId": order.issuer_request_id,
        "sequence": sequence,
    }
    operation.update({k: v for k, v in optional.items() if v is not None})
    return operation


def _shipment(order: Order) -> dict[str, str] | None:
    if order.shipment is None:
        return None
    fields = {
        "carrier": order.shipment.carrier,
        "trackingNumber": order.shipment.tracking_number,
        "status": order.shipment.status.value,
        "message": order.shipment.message,
        "trackingUrl": order.shipment.tracking_url,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _container(order: Order) -> dict[str, str] | None:
    ref = order.container
    if ref is None:
        return None
    handed = ref.handed_to_cardholder_at
    fields = {
        "groupId": ref.group_id,
        "orderId": ref.order_id,
        "status": ref.status.value,
        "carrier": ref.carrier,
        "trackingNumber": ref.tracking_number,
        "handedToCardholderAt": iso_utc(handed) if handed else None,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _cancellable_until(order: Order) -> str | None:
    """Shown only while a cancellation would still be accepted."""
    if order.cancellable_until is None or not is_cancellable(order.production_status):
        return None
    return iso_utc(order.cancellable_until)
