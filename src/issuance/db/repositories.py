"""Orders as rows: translation both ways and the queries the use cases need."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Row, Select, String, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from issuance.db.containers import container_ref_document, container_ref_from
from issuance.db.models import (
    EventRow,
    OrderRow,
)
from issuance.db.moments import utc
from issuance.domain.orders import Order, Shipment
from issuance.domain.retention import Retention
from issuance.domain.statuses import Hold, ProductionStatus, ShipmentStatus

UNSETTLED_SHIPMENTS = (
    ShipmentStatus.IN_TRANSIT.value,
    ShipmentStatus.UNDELIVERABLE.value,
    ShipmentStatus.RETURNED.value,
)


StateRow = Row[*tuple[Any, ...]]

# What `order_from_row` reads: a status read selects these columns only (no request document,
# no sealed data) and skips the ORM, which halves the CPU of a read (bench/status.py).
STATE_COLUMNS = tuple(
    getattr(OrderRow, name)
    for name in (
        "operation_id",
        "issuer_id",
        "card_id",
        "start_time",
        "production_status",
        "issuer_request_id",
        "consumer_id",
        "card_product_id",
        "input_file_name",
        "production_batch",
        "container",
        "end_time",
        "due_date",
        "cancellable_until",
        "production_site",
        "error_code",
        "error",
        "reason",
        "hold",
        "shipment",
        "sla_standing",
        "priority",
        "materials",
        "updated_at",
        "purgeable_since",
        "sensitive_data_purged_at",
    )
)


def order_from_row(row: OrderRow | StateRow) -> Order:
    """The domain order of a mapped row, or of a Core row of `STATE_COLUMNS`."""
    return Order(
        operation_id=row.operation_id,
        issuer_id=row.issuer_id,
        card_id=row.card_id,
        start_time=utc(row.start_time) or row.start_time,
        production_status=ProductionStatus(row.production_status),
        issuer_request_id=row.issuer_request_id,
        consumer_id=row.consumer_id,
        card_product_id=row.card_product_id,
        input_file_name=row.input_file_name,
        production_batch=row.production_batch,
        end_time=utc(row.end_time),
        due_date=utc(row.due_date),
        cancellable_until=utc(row.cancellable_until),
        production_site=row.production_site,
        error_code=row.error_code,
        error=row.error,
        reason=row.reason,
        hold=Hold(row.hold),
        shipment=_shipment_from(row.shipment),
        sla_standing=row.sla_standing,
        priority=row.priority,
        materials=tuple(row.materials or ()),
        updated_at=utc(row.updated_at),
        purgeable_since=utc(row.purgeable_since),
        sensitive_data_purged_at=utc(row.sensitive_data_purged_at),
        container=container_ref_from(row.container),
    )


def _shipment_from(document: dict[str, Any] | None) -> Shipment | None:
    if document is None:
        return None
    return Shipment(
        carrier=document["carrier"],
        tracking_number=document.get("trackingNumber"),
        tracking_url=document.get("trackingUrl"),
        status=ShipmentStatus(document["status"]),
        message=document.get("message"),
    )


def _shipment_document(shipment: Shipment | None) -> dict[str, Any] | None:
    if shipment is None:
        return None
    return {
        "carrier": shipment.carrier,
        "trackingNumber": shipment.tracking_number,
        "trackingUrl": shipment.tracking_url,
        "status": shipment.status.value,
        "message": shipment.message,
    }


def copy_state(order: Order, row: OrderRow, now: datetime) -> None:
    """Write the order's mutable state onto its row."""
    row.production_status = order.production_status.value
    row.status = order.status.value
    row.active_card_id = order.card_id if order.end_time is None else None
    row.end_time = order.end_time
    row.due_date = order.due_date
    row.cancellable_until = order.cancellable_until
    row.sla_standing = order.sla_standing
    row.hold = order.hold.value
    row.shipment = _shipment_document(order.shipment)
    row.shipment_status = order.shipment.status.value if order.shipment else None
    row.input_file_name = order.input_file_name
    row.production_batch = order.production_batch
    row.production_site = order.production_site
    row.error_code = order.error_code
    row.error = order.error
    row.reason = order.reason
    row.updated_at = order.updated_at or now
    row.purgeable_since = order.purgeable_since
    row.sensitive_data_purged_at = order.sensitive_data_purged_at
    row.container = container_ref_document(order.container)
    row.container_group_id = order.container.group_id if order.container else None
    if order.sensitive_data_purged_at is not None:  # the data and its wrapped key are destroyed
        row.sensitive_data = None
        row.sensitive_key_id = None


class SqlOrderRepository:
    def __init__(self, session: Session, *, retention: Retention | None = None) -> None:
        self.session = session
        self.retention = retention  # handed to every order it loads or adds
        self.seen: dict[str, tuple[Order, OrderRow]] = {}
        self.cards: dict[tuple[str, str], list[str]] = {}  # preloaded cards: all their orders

    def forget(self) -> None:
        """After a commit or a rollback: what was loaded is read again when asked for."""
        self.seen.clear()
        self.cards.clear()

    def track(self, row: OrderRow) -> Order:
        known = self.seen.get(row.operation_id)
        if known is not None:
            return known[0]
        order = order_from_row(row)
        order.retention = self.retention
        self.seen[row.operation_id] = (order, row)
        return order

    def add(
        self,
        order: Order,
        *,
        request: dict[str, Any],
        fingerprint: str,
        sealed: tuple[str, bytes] | None,
        encrypted_data_digest: str | None = None,
    ) -> None:
        row = OrderRow(
            operation_id=order.operation_id,
            issuer_id=order.issuer_id,
            card_id=order.card_id,
            issuer_request_id=order.issuer_request_id,
            request_fingerprint=fingerprint,
            encrypted_data_digest=encrypted_data_digest,
            consumer_id=order.consumer_id,
            card_product_id=order.card_product_id,
            priority=order.priority,
            materials=list(order.materials),
            input_file_name=order.input_file_name,
            start_time=order.start_time,
            request=request,
            sensitive_key_id=sealed[0] if sealed else None,
            sensitive_data=sealed[1] if sealed else None,
        )
        order.retention = self.retention
        copy_state(order, row, order.start_time)
        self.session.add(row)
        self.seen[order.operation_id] = (order, row)
        preloaded = self.cards.get((order.issuer_id, order.card_id))
        if preloaded is not None:
            preloaded.append(order.operation_id)

    def by_issuer_request_id(
        self, issuer_id: str, issuer_request_id: str
    ) -> tuple[Order, str] | None:
        row = self.session.scalar(
            _BY_REQUEST_ID, {"issuer_id": issuer_id, "issuer_request_id": issuer_request_id}
        )
        return None if row is None else (self.track(row), row.request_fingerprint)

    def active_for_card(self, issuer_id: str, card_id: str) -> Order | None:
        row = self.session.scalar(_ACTIVE_FOR_CARD, {"issuer_id": issuer_id, "card_id": card_id})
        return None if row is None else self.track(row)

    def by_operation_id(self, operation_id: str) -> Order | None:
        known = self.seen.get(operation_id)
        if known is not None:
            return known[0]
        row = self.session.get(OrderRow, operation_id)
        return None if row is None else self.track(row)

    def preload(self, operation_ids: Collection[str]) -> None:
        missing = sorted(set(operation_ids) - self.seen.keys())
        for start in range(0, len(missing), PRELOAD_CHUNK):
            chunk = missing[start : start + PRELOAD_CHUNK]
            for row in self.session.scalars(
                select(OrderRow).where(OrderRow.operation_id.in_(chunk))
            ):
                self.track(row)

    def request_of(self, operation_id: str) -> dict[str, Any]:
        known = self.seen.get(operation_id)
        row = known[1] if known else self.session.get(OrderRow, operation_id)
        return dict(row.request) if row is not None else {}

    def preload_cards(self, cards: Collection[tuple[str, str]]) -> list[str]:
        missing = sorted(set(cards) - self.cards.keys())
        for issuer_id, same_issuer in groupby(missing, key=lambda pair: pair[0]):
            card_ids = [card_id for _, card_id in same_issuer]
            for start in range(0, len(card_ids), PRELOAD_CHUNK):
                chunk = card_ids[start : start + PRELOAD_CHUNK]
                self.cards.update(((issuer_id, card_id), []) for card_id in chunk)
                for row in self.session.scalars(
                    select(OrderRow).where(
                        OrderRow.issuer_id == issuer_id, OrderRow.card_id.in_(chunk)
                    )
                ):
                    self.track(row)
                    self.cards[(issuer_id, row.card_id)].append(row.operation_id)
        return [operation_id for card in set(cards) for operation_id in self.cards[card]]

    def latest_for_card(self, issuer_id: str, card_id: str) -> Order | None:
        preloaded = self.cards.get((issuer_id, card_id))
        if preloaded is not None:  # the query's order: in progress first, then the latest start
            orders = (self.seen[operation_id][0] for operation_id in preloaded)
            return max(orders, key=lambda o: (o.end_time is None, o.start_time), default=None)
        row = self.session.scalar(
            select(OrderRow)
            .where(OrderRow.issuer_id == issuer_id, OrderRow.card_id == card_id)
            .order_by(OrderRow.active_card_id.is_(None), OrderRow.start_time.desc())
            .limit(1)
        )
        return None if row is None else self.track(row)

    def in_flight(self, *, limit: int, issuer_id: str | None = None) -> list[Order]:
        unsettled = or_(
            OrderRow.active_card_id.is_not(None),
            and_(
                OrderRow.production_status == ProductionStatus.CARD_SHIPPED.value,
                OrderRow.shipment_status.in_(UNSETTLED_SHIPMENTS),
            ),
        )
        query = select(OrderRow).where(unsettled).order_by(OrderRow.updated_at).limit(limit)
        if issuer_id is not None:
            query = query.where(OrderRow.issuer_id == issuer_id)
        return [self.track(row) for row in self.session.scalars(query)]

    def search(
        self,
        *,
        issuer_id: str | None = None,
        statuses: tuple[str, ...] = (),
        limit: int = 100,
    ) -> list[Order]:
        query = select(OrderRow).order_by(OrderRow.updated_at.desc()).limit(limit)
        if issuer_id is not None:
            query = query.where(OrderRow.issuer_id == issuer_id)
        if statuses:
            query = query.where(OrderRow.production_status.in_(statuses))
        return [self.track(row) for row in self.session.scalars(query)]

    def for_card(self, issuer_id: str, card_id: str) -> list[tuple[Order, int]]:
        """A read: Core rows of the state columns, not tracked (nothing here is saved).

        Run on the session's connection, past the ORM's execute (no autoflush: its callers read
        through `Platform.reader()`, with nothing pending): 390 → 325 µs of CPU per status read
        on PostgreSQL, 2,000 reads in process.
        """
        rows = self.session.connection().execute(
            CARD_OPERATIONS, {"issuer_id": issuer_id, "card_id": card_id}
        )
        return [(self._untracked(row), row.sequence) for row in rows]

    def _untracked(self, row: StateRow) -> Order:
        order = order_from_row(row)
        order.retention = self.retention
        return order


def _card_operations() -> Select[*tuple[Any, ...]]:
    """Every order of a card with its latest event sequence, oldest first.

    Built once: constructing the statement (its subquery's column proxies) and its cache key
    cost more than running it on an index (bench/status.py).
    """
    issuer_id = bindparam("issuer_id", type_=String)
    card_id = bindparam("card_id", type_=String)
    latest = (
        select(EventRow.operation_id, func.max(EventRow.sequence).label("sequence"))
        .where(EventRow.issuer_id == issuer_id, EventRow.card_id == card_id)
        .group_by(EventRow.operation_id)
        .subquery()
    )
    return (
        select(*STATE_COLUMNS, latest.c.sequence)
        .join_from(OrderRow, latest, latest.c.operation_id == OrderRow.operation_id)
        .where(OrderRow.issuer_id == issuer_id, OrderRow.card_id == card_id)
        .order_by(OrderRow.start_time, latest.c.sequence)
    )


CARD_OPERATIONS = _card_operations()

# Every order placed looks both up (idempotency, one order in progress per card): built once.
PRELOAD_CHUNK = 500  # ids per IN (...) list: well under every driver's parameter limit

_BY_REQUEST_ID = select(OrderRow).where(
    OrderRow.issuer_id == bindparam("issuer_id", type_=String),
    OrderRow.issuer_request_id == bindparam("issuer_request_id", type_=String),
)
_ACTIVE_FOR_CARD = select(OrderRow).where(
    OrderRow.issuer_id == bindparam("issuer_id", type_=String),
    OrderRow.active_card_id == bindparam("card_id", type_=String),
)
