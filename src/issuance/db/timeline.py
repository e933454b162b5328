"""A card's journal for operators: every event with its sequence, and where each was delivered.

Each event shows the fields of its operation that say what changed (step, hold, shipment,
reason), read from the journal payload, which is the D1 operation object and so holds no card
data. Deliveries show metadata and attempts only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from issuance.db.delivery_log import AttemptView, attempts_of
from issuance.db.engine import SQLITE_BEGIN
from issuance.db.models import DeliveryRow, EventRow
from issuance.db.moments import utc


@dataclass(frozen=True, slots=True)
class EventDelivery:
    delivery_id: int
    endpoint_id: str
    status: str
    next_attempt_at: datetime | None
    attempts: list[AttemptView]


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    event_id: int
    sequence: int
    operation_id: str
    event_type: str
    occurred_at: datetime
    status: str  # details.status after the change
    on_hold: str | None
    shipment_status: str | None
    reason: str | None
    error_code: str | None
    deliveries: list[EventDelivery] = field(default_factory=list)


def _event(row: Any) -> TimelineEvent:
    payload: dict[str, Any] = row.payload
    details: dict[str, Any] = payload.get("details", {})
    shipment: dict[str, Any] = details.get("shipment") or {}
    return TimelineEvent(
        event_id=row.event_id,
        sequence=row.sequence,
        operation_id=row.operation_id,
        event_type=row.event_type,
        occurred_at=utc(row.occurred_at) or row.occurred_at,
        status=str(details.get("status", "")),
        on_hold=details.get("onHold"),
        shipment_status=shipment.get("status"),
        reason=details.get("reason") or payload.get("error"),
        error_code=payload.get("errorCode"),
    )


def card_timeline(engine: Engine, issuer_id: str, card_id: str) -> list[TimelineEvent]:
    """Every event of the card, in sequence order, each with its deliveries and their attempts."""
    events_query = (
        select(
            EventRow.event_id,
            EventRow.sequence,
            EventRow.operation_id,
            EventRow.event_type,
            EventRow.occurred_at,
            EventRow.payload,
        )
        .where(EventRow.issuer_id == issuer_id, EventRow.card_id == card_id)
        .order_by(EventRow.sequence)
    )
    with engine.connect().execution_options(**{SQLITE_BEGIN: "DEFERRED"}) as connection:
        events = [_event(row) for row in connection.execute(events_query)]
        deliveries = connection.execute(
            select(
                DeliveryRow.delivery_id,
                DeliveryRow.event_id,
                DeliveryRow.endpoint_id,
                DeliveryRow.status,
                DeliveryRow.next_attempt_at,
            )
            .where(DeliveryRow.event_id.in_([e.event_id for e in events]))
            .order_by(DeliveryRow.delivery_id)
        ).all()
    attempts = attempts_of(engine, (d.delivery_id for d in deliveries))
    by_event = {event.event_id: event for event in events}
    for row in deliveries:
        by_event[row.event_id].deliveries.append(
            EventDelivery(
                delivery_id=row.delivery_id,
                endpoint_id=row.endpoint_id,
                status=row.status,
                next_attempt_at=utc(row.next_attempt_at),
                attempts=attempts[row.delivery_id],
            )
        )
    return events
