"""Order search for operators: exact filters and keyset pages that stay fast over a million orders.

A page is the `limit` orders that follow a cursor in one fixed order, found with a row-value
comparison, `(updated_at, operation_id) < (:u, :o)`, that an index range scan answers directly;
OFFSET would read and drop every earlier row, so page 2,000 would cost 2,000 pages. The order is
the most recently changed first, or, when a due-date range is given, the soonest due first (the
range then walks a due-date index instead of filtering the whole table).

Only summary columns are read: never the request, never the sealed card data.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, select, tuple_

from issuance.db.engine import SQLITE_BEGIN
from issuance.db.models import OrderRow
from issuance.db.moments import utc
from issuance.domain.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """What to look for; every field given must match (None or empty: any)."""

    issuer_id: str | None = None
    card_id: str | None = None
    issuer_request_id: str | None = None
    consumer_id: str | None = None
    statuses: tuple[str, ...] = ()
    centre: str | None = None
    held: bool = False  # only orders on hold (by anyone)
    shipment_status: str | None = None
    due_from: datetime | None = None  # inclusive
    due_before: datetime | None = None  # exclusive

    @property
    def by_due_date(self) -> bool:
        return self.due_from is not None or self.due_before is not None


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """One line of a result page."""

    operation_id: str
    issuer_id: str
    card_id: str
    issuer_request_id: str | None
    consumer_id: str | None
    status: str
    production_status: str
    hold: str
    sla_standing: str | None
    shipment_status: str | None
    production_site: str | None
    error_code: str | None
    reason: str | None
    start_time: datetime
    due_date: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    orders: list[OrderSummary]
    next_cursor: str | None  # None on the last page


_COLUMNS = (
    OrderRow.operation_id,
    OrderRow.issuer_id,
    OrderRow.card_id,
    OrderRow.issuer_request_id,
    OrderRow.consumer_id,
    OrderRow.status,
    OrderRow.production_status,
    OrderRow.hold,
    OrderRow.sla_standing,
    OrderRow.shipment_status,
    OrderRow.production_site,
    OrderRow.error_code,
    OrderRow.reason,
    OrderRow.start_time,
    OrderRow.due_date,
    OrderRow.updated_at,
)


def encode_cursor(moment: datetime, operation_id: str) -> str:
    raw = json.dumps([utc(moment).isoformat(), operation_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (sort key, operation id) a cursor stands for; a forged or stale one is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, operation_id = json.loads(raw)
        return utc(datetime.fromisoformat(moment)), str(operation_id)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidRequest("is not a cursor this search gave", field="after") from None


def _conditions(where: OrderFilter) -> list[ColumnElement[bool]]:
    exact = {
        OrderRow.issuer_id: where.issuer_id,
        OrderRow.card_id: where.card_id,
        OrderRow.issuer_request_id: where.issuer_request_id,
        OrderRow.consumer_id: where.consumer_id,
        OrderRow.production_site: where.centre,
        OrderRow.shipment_status: where.shipment_status,
    }
    found = [column == value for column, value in exact.items() if value is not None]
    if where.statuses:
        found.append(OrderRow.production_status.in_(where.statuses))
    if where.held:
        found.append(OrderRow.hold != "NONE")
    if where.due_from is not None:
        found.append(OrderRow.due_date >= utc(where.due_from))
    if where.due_before is not None:
        found.append(OrderRow.due_date < utc(where.due_before))
    return found


def _ordered(
    query: Select[*tuple[Any, ...]], where: OrderFilter, after: str | None
) -> Select[*tuple[Any, ...]]:
    if where.by_due_date:
        key = tuple_(OrderRow.due_date, OrderRow.operation_id)
        if after is not None:
            query = query.where(key > tuple_(*decode_cursor(after)))
        return query.order_by(OrderRow.due_date, OrderRow.operation_id)
    key = tuple_(OrderRow.updated_at, OrderRow.operation_id)
    if after is not None:
        query = query.where(key < tuple_(*decode_cursor(after)))
    return query.order_by(OrderRow.updated_at.desc(), OrderRow.operation_id.desc())


def search_orders(
    engine: Engine, where: OrderFilter, *, after: str | None = None, limit: int = 50
) -> Page:
    """One page of matching orders and the cursor of the next (read-only, never blocks writers)."""
    query = _ordered(select(*_COLUMNS).where(*_conditions(where)), where, after)
    with engine.connect().execution_options(**{SQLITE_BEGIN: "DEFERRED"}) as connection:
        rows = connection.execute(query.limit(limit + 1)).all()
    orders = [
        OrderSummary(
            **{
                **row._asdict(),
                "start_time": utc(row.start_time),
                "due_date": utc(row.due_date) if row.due_date else None,
                "updated_at": utc(row.updated_at),
            }
        )
        for row in rows[:limit]
    ]
    if len(rows) <= limit:
        return Page(orders, None)
    last = orders[-1]
    key = last.due_date if where.by_due_date and last.due_date else last.updated_at
    return Page(orders, encode_cursor(key, last.operation_id))
