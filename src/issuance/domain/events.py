"""Events an order records as it changes; the unit of work turns each into an outbox row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from issuance.domain.statuses import ProductionStatus


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    """A production order was accepted (`CARD_PROD_REQUESTED`)."""

    operation_id: str
    occurred_at: datetime
    operation: dict[str, Any]  # the operation object right after the change


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """`details.status` moved from one step to another."""

    operation_id: str
    previous: ProductionStatus
    current: ProductionStatus
    occurred_at: datetime
    operation: dict[str, Any]


Event = OrderAccepted | StatusChanged


def event_type(event: Event) -> str:
    """The stable name stored with the event, e.g. `order.accepted`."""
    return {OrderAccepted: "order.accepted", StatusChanged: "order.status_changed"}[type(event)]
