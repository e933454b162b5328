"""The Order aggregate: one PRODUCE operation for one card, and the only way to change it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from issuance.domain.errors import IllegalTransition
from issuance.domain.events import Event, OrderAccepted, StatusChanged
from issuance.domain.operations import operation_object
from issuance.domain.statuses import (
    TRANSITIONS,
    OperationStatus,
    ProductionStatus,
    is_final,
    operation_status,
)


@dataclass(slots=True)
class Order:
    """A card production order as D1 reports it: an operation with its issuance details.

    State changes go through `move_to`, which consults the transition table, stamps `endTime`
    when the operation ends and records the event the unit of work writes to the journal.
    """

    operation_id: str
    issuer_id: str
    card_id: str
    start_time: datetime
    production_status: ProductionStatus = ProductionStatus.CARD_PROD_REQUESTED
    issuer_request_id: str | None = None
    consumer_id: str | None = None
    card_product_id: str | None = None
    input_file_name: str | None = None
    end_time: datetime | None = None
    due_date: datetime | None = None
    production_site: str | None = None
    error_code: str | None = None
    error: str | None = None
    reason: str | None = None
    events: list[Event] = field(default_factory=list)

    @classmethod
    def accept(
        cls,
        *,
        operation_id: str,
        issuer_id: str,
        card_id: str,
        at: datetime,
        issuer_request_id: str | None = None,
        consumer_id: str | None = None,
        card_product_id: str | None = None,
        input_file_name: str | None = None,
        due_date: datetime | None = None,
        production_site: str | None = None,
    ) -> Order:
        """A new order at `CARD_PROD_REQUESTED`, with its `OrderAccepted` event recorded."""
        order = cls(
            operation_id=operation_id,
            issuer_id=issuer_id,
            card_id=card_id,
            start_time=at,
            issuer_request_id=issuer_request_id,
            consumer_id=consumer_id,
            card_product_id=card_product_id,
            input_file_name=input_file_name,
            due_date=due_date,
            production_site=production_site,
        )
        order.events.append(OrderAccepted(operation_id, at, operation_object(order)))
        return order

    def operation(self, *, sequence: int | None = None) -> dict[str, Any]:
        """This order as a D1 operation object."""
        return operation_object(self, sequence=sequence)

    @property
    def status(self) -> OperationStatus:
        return operation_status(self.production_status)

    def move_to(
        self,
        target: ProductionStatus,
        *,
        at: datetime,
        reason: str | None = None,
        error_code: str | None = None,
        error: str | None = None,
    ) -> None:
        """Apply one legal step; an illegal one raises and changes nothing."""
        if target not in TRANSITIONS[self.production_status]:
            raise IllegalTransition(
                f"cannot move card {self.card_id} from {self.production_status} to {target}",
                field="details.status",
            )
        previous = self.production_status
        self.production_status = target
        self.reason = reason
        if self.status is OperationStatus.FAILED:
            self.error_code = error_code or target.value
            self.error = error or reason
        if is_final(target):
            self.end_time = at
        self.events.append(
            StatusChanged(self.operation_id, previous, target, at, operation_object(self))
        )
