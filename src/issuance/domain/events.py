"""Events an order records as it changes; the unit of work turns each into a journal row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """What changed; stored with the event (stable names, dotted)."""

    ACCEPTED = "order.accepted"  # the order was placed
    STATUS_CHANGED = "order.status_changed"  # details.status moved
    HELD = "order.held"  # put on hold by the bureau or the issuer
    RELEASED = "order.released"  # the hold was lifted
    SHIPMENT_UPDATED = "order.shipment_updated"  # the carrier reported a new shipment status
    HANDED_TO_CARDHOLDER = "order.handed_to_cardholder"  # BULK: the branch handed it over
    SLA_STANDING_CHANGED = "order.sla_standing_changed"  # became at risk, or late
    SENSITIVE_DATA_PURGED = "order.sensitive_data_purged"  # after a retention period


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One change of an order, with the full operation object right after it."""

    kind: EventKind
    operation_id: str
    occurred_at: datetime
    operation: dict[str, Any]
