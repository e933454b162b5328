"""Reading the delivery log for operators: deliveries, their attempts, counts per endpoint.

Read-only, in DEFERRED transactions on SQLite, so looking at the log never waits for a worker
settling its claims. Metadata only: the event payloads are never read here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, select

from issuance.db.engine import SQLITE_BEGIN
from issuance.db.models import DeliveryAttemptRow, DeliveryRow, EventRow
from issuance.db.moments import utc
from issuance.db.outbox import DeliveryView


@dataclass(frozen=True, slots=True)
class AttemptView:
    attempted_at: datetime
    latency_ms: float
    status_code: int | None
    error: str | None


def _reading(engine: Engine) -> Connection:
    return engine.connect().execution_options(**{SQLITE_BEGIN: "DEFERRED"})


def _views() -> Select[DeliveryRow, int]:
    return select(DeliveryRow, EventRow.sequence).join(
        EventRow, EventRow.event_id == DeliveryRow.event_id
    )


def _view(row: Any) -> DeliveryView:
    return DeliveryView(
        delivery_id=row.delivery_id,
        event_id=row.event_id,
        issuer_id=row.issuer_id,
        endpoint_id=row.endpoint_id,
        card_id=row.card_id,
        sequence=row.sequence,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=utc(row.next_attempt_at),
        delivered_at=utc(row.delivered_at),
        last_status_code=row.last_status_code,
        last_error=row.last_error,
    )


def find_deliveries(
    engine: Engine,
    *,
    status: str | None = None,
    issuer_id: str | None = None,
    card_id: str | None = None,
    limit: int = 100,
) -> list[DeliveryView]:
    """Deliveries, newest first, for the CLI and the operator API."""
    query = _views().order_by(DeliveryRow.delivery_id.desc()).limit(limit)
    if status is not None:
        query = query.where(DeliveryRow.status == status)
    if issuer_id is not None:
        query = query.where(DeliveryRow.issuer_id == issuer_id)
    if card_id is not None:
        query = query.where(DeliveryRow.card_id == card_id)
    with _reading(engine) as connection:
        return [_view(row) for row in connection.execute(query)]


def find_delivery(engine: Engine, delivery_id: int) -> DeliveryView | None:
    with _reading(engine) as connection:
        row = connection.execute(_views().where(DeliveryRow.delivery_id == delivery_id)).first()
    return None if row is None else _view(row)


def attempts_of(engine: Engine, delivery_ids: Iterable[int]) -> dict[int, list[AttemptView]]:
    """Every attempt of these deliveries, oldest first, in one query (a page, not N+1)."""
    ids = sorted(set(delivery_ids))
    found: dict[int, list[AttemptView]] = {delivery_id: [] for delivery_id in ids}
    if not ids:
        return found
    query = (
        select(DeliveryAttemptRow)
        .where(DeliveryAttemptRow.delivery_id.in_(ids))
        .order_by(DeliveryAttemptRow.attempt_id)
    )
    with _reading(engine) as connection:
        for row in connection.execute(query):
            found[row.delivery_id].append(
                AttemptView(
                    attempted_at=utc(row.attempted_at) or row.attempted_at,
                    latency_ms=row.latency_ms,
                    status_code=row.status_code,
                    error=row.error,
                )
            )
    return found


def counts_by_endpoint(
    engine: Engine, statuses: Iterable[str]
) -> dict[tuple[str, str], dict[str, int]]:
    """(issuer, endpoint) → {status: deliveries in it}, for these statuses only: the delivered
    are most rows and nobody's worry, and the (status, …) index serves the others."""
    query = (
        select(DeliveryRow.issuer_id, DeliveryRow.endpoint_id, DeliveryRow.status, func.count())
        .where(DeliveryRow.status.in_(list(statuses)))
        .group_by(DeliveryRow.issuer_id, DeliveryRow.endpoint_id, DeliveryRow.status)
    )
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    with _reading(engine) as connection:
        for issuer_id, endpoint_id, status, count in connection.execute(query):
            counts[(issuer_id, endpoint_id)][status] = int(count)
    return dict(counts)
