"""Outbox rows written straight into the database: a card's events and their deliveries, in any
state, for tests of claiming and parking that need a backlog no receiver has seen."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Engine, event, insert, select

from issuance.db.models import DeliveryRow, EventRow, OrderRow
from tests.factories import DEMO

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
Moment = TypeVar("Moment", datetime, None)


@dataclass(frozen=True)
class Row:
    """One event of a card and its delivery to `endpoint`."""

    card: str
    sequence: int
    due: datetime
    status: str = "PENDING"
    claimed_until: datetime | None = None
    endpoint: str = "main"


def write(engine: Engine, rows: list[Row]) -> list[int]:
    """The rows' delivery ids, in the order given (events are written in that order too)."""
    cards = list(dict.fromkeys(row.card for row in rows))
    with engine.begin() as connection:
        connection.execute(
            insert(OrderRow),
            [
                {
                    "operation_id": f"op-{card}",
                    "issuer_id": DEMO,
                    "card_id": card,
                    "request_fingerprint": "0" * 64,
                    "status": "PENDING",
                    "production_status": "CARD_PROD_REQUESTED",
                    "start_time": NOW,
                    "request": {},
                    "updated_at": NOW,
                    "version": 1,
                }
                for card in cards
            ],
        )
        event_ids = connection.scalars(
            insert(EventRow).returning(EventRow.event_id, sort_by_parameter_order=True),
            [
                {
                    "issuer_id": DEMO,
                    "card_id": row.card,
                    "operation_id": f"op-{row.card}",
                    "sequence": row.sequence,
                    "event_type": "ACCEPTED",
                    "payload": {"cardId": row.card, "sequence": row.sequence},
                    "occurred_at": NOW,
                    "recorded_at": NOW,
                }
                for row in rows
            ],
        ).all()
        return list(
            connection.scalars(
                insert(DeliveryRow).returning(
                    DeliveryRow.delivery_id, sort_by_parameter_order=True
                ),
                [
                    {
                        "event_id": event_id,
                        "issuer_id": DEMO,
                        "endpoint_id": row.endpoint,
                        "card_id": row.card,
                        "status": row.status,
                        "attempts": 0,
                        "next_attempt_at": row.due,
                        "claimed_by": "w0" if row.claimed_until else None,
                        "claimed_until": row.claimed_until,
                    }
                    for event_id, row in zip(event_ids, rows, strict=True)
                ],
            ).all()
        )


def due_at(engine: Engine, delivery_ids: list[int]) -> list[datetime]:
    with engine.connect() as connection:
        found = dict(
            connection.execute(
                select(DeliveryRow.delivery_id, DeliveryRow.next_attempt_at).where(
                    DeliveryRow.delivery_id.in_(delivery_ids)
                )
            ).all()
        )
    return [utc(found[i]) for i in delivery_ids]


def utc(moment: Moment) -> Moment:
    """SQLite hands back naive datetimes for the UTC it stored."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


class Sent(NamedTuple):
    sql: str
    parameters: Any
    many: bool  # an executemany


@contextmanager
def statements(engine: Engine) -> Iterator[list[Sent]]:
    """The SQL statements sent while the block runs."""
    sent: list[Sent] = []

    def record(_c: Any, _cursor: Any, sql: str, parameters: Any, _ctx: Any, many: bool) -> None:
        sent.append(Sent(sql, parameters, many))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)
