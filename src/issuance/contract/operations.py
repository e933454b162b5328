"""The operation object of notifications and of `productionStatus`."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from issuance.contract.common import WireModel


class _Received(WireModel):
    """Read side: unknown fields are ignored, as D1 asks of its readers."""

    model_config = ConfigDict(extra="ignore")


class ShipmentTracking(_Received):
    carrier: str | None = None
    tracking_number: str | None = None
    status: str | None = None
    message: str | None = None
    tracking_url: str | None = None


class ContainerTracking(_Received):
    """Extension, `details.container`: the BULK container a card travels in (D1 shipment guide:
    `groupId` is the first-level container, `orderId` the second-level one holding it)."""

    group_id: str
    order_id: str | None = None
    status: str | None = Field(
        default=None, description="OPEN, IN_TRANSIT, UNDELIVERABLE, RETURNED, RECEIVED_AT_BRANCH"
    )
    carrier: str | None = None
    tracking_number: str | None = None
    handed_to_cardholder_at: str | None = None


class OperationDetails(_Received):
    """`details`: `status` is a string, not an enum, so new D1 values never break a reader."""

    status: str
    reason: str | None = None
    due_date: str | None = None
    production_site: str | None = None
    shipment: ShipmentTracking | None = None
    input_file_name: str | None = None
    issuer_request_id: str | None = None
    on_hold: str | None = Field(default=None, description="Extension: BUREAU or ISSUER while held")
    sla_standing: str | None = Field(default=None, description="Extension: AT_RISK or LATE")
    cancellable_until: str | None = Field(
        default=None, description="Extension: the order can be cancelled until then"
    )
    production_batch: str | None = Field(
        default=None, description="Extension: the production batch file the card is made from"
    )
    sensitive_data_purged_at: str | None = Field(
        default=None, description="Extension: when its PAN, tracks and CSC were destroyed"
    )
    container: ContainerTracking | None = Field(
        default=None, description="Extension: the BULK container the card travels in"
    )


class Operation(_Received):
    operation_id: str
    operation: str = "PRODUCE"
    status: str = Field(description="PENDING, SUCCESSFUL or FAILED")
    start_time: str
    end_time: str | None = None
    card_id: str
    details: OperationDetails
    error_code: str | None = None
    error: str | None = None
    input_file_name: str | None = None
    issuer_request_id: str | None = None
    sequence: int | None = Field(default=None, description="Extension: per-card event counter")


class Operations(_Received):
    """Body of `productionStatus` and of a D1 card notification."""

    operations: list[Operation]


class ErrorBody(_Received):
    """D1's error body (`errorCode`, `error`), plus the field and every problem (additive)."""

    error_code: str
    error: str
    field: str | None = None
    problems: list[dict[str, str | None]] | None = None
