"""BULK containers as rows, and a card's view of its container as JSON on its order row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from issuance.db.models import ContainerRow, OrderRow
from issuance.db.moments import utc
from issuance.domain.containers import Container, ContainerRef, ContainerStatus
from issuance.domain.orders import Order


def container_ref_document(ref: ContainerRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    handed = ref.handed_to_cardholder_at
    return {
        "groupId": ref.group_id,
        "orderId": ref.order_id,
        "status": ref.status.value,
        "carrier": ref.carrier,
        "trackingNumber": ref.tracking_number,
        "handedToCardholderAt": handed.astimezone(UTC).isoformat() if handed else None,
    }


def container_ref_from(document: dict[str, Any] | None) -> ContainerRef | None:
    if document is None:
        return None
    handed = document.get("handedToCardholderAt")
    return ContainerRef(
        group_id=document["groupId"],
        order_id=document.get("orderId"),
        status=ContainerStatus(document["status"]),
        carrier=document.get("carrier"),
        tracking_number=document.get("trackingNumber"),
        handed_to_cardholder_at=datetime.fromisoformat(handed) if handed else None,
    )


def _container_from(row: ContainerRow) -> Container:
    return Container(
        issuer_id=row.issuer_id,
        group_id=row.group_id,
        order_id=row.order_id,
        status=ContainerStatus(row.status),
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        tracking_url=row.tracking_url,
        message=row.message,
        created_at=utc(row.created_at) or row.created_at,
        shipped_at=utc(row.shipped_at),
        received_at=utc(row.received_at),
        updated_at=utc(row.updated_at),
    )


class SqlContainerRepository:
    """Containers of the unit of work's session; their cards are tracked by the order repository,
    so the cards a container action moves are committed (and journalled) like any order."""

    def __init__(self, session: Session, track: Callable[[OrderRow], Order]) -> None:
        self.session = session
        self.track = track
        self.rows: dict[tuple[str, str], ContainerRow] = {}

    def ensure(
        self, issuer_id: str, group_id: str, *, order_id: str | None, at: datetime
    ) -> Container:
        """The container, created OPEN if new, share-locked until the order commits.

        Racing orders for a new container create one row (insert-or-nothing), so neither is
        refused. The share lock (PostgreSQL; SQLite has one writer anyway) makes a shipment
        that locks the row wait for this order, and this order wait for a shipment under way:
        a card is never added to a container as it leaves."""
        connection = self.session.connection()
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(
            dialect.insert(ContainerRow)
            .values(
                issuer_id=issuer_id,
                group_id=group_id,
                order_id=order_id,
                status=ContainerStatus.OPEN.value,
                created_at=at,
                updated_at=at,
                version=1,
            )
            .on_conflict_do_nothing()
        )
        row = self.session.get(ContainerRow, (issuer_id, group_id), with_for_update={"read": True})
        assert row is not None  # inserted now or before
        self.rows[(issuer_id, group_id)] = row
        return _container_from(row)

    def get(self, issuer_id: str, group_id: str, *, lock: bool = False) -> Container | None:
        row = self.session.get(
            ContainerRow, (issuer_id, group_id), with_for_update=True if lock else None
        )
        if row is None:
            return None
        self.rows[(issuer_id, group_id)] = row
        return _container_from(row)

    def save(self, container: Container) -> None:
        """Write a loaded container's state to its row (flushed with the unit of work)."""
        row = self.rows[(container.issuer_id, container.group_id)]
        row.status = container.status.value
        row.carrier = container.carrier
        row.tracking_number = container.tracking_number
        row.tracking_url = container.tracking_url
        row.message = container.message
        row.shipped_at = container.shipped_at
        row.received_at = container.received_at
        row.updated_at = container.updated_at or row.updated_at

    def search(
        self,
        issuer_id: str | None,
        *,
        statuses: tuple[str, ...] = (),
        order_id: str | None = None,
        limit: int = 100,
    ) -> list[tuple[Container, int]]:
        """Containers, most recently changed first, each with its number of orders."""
        cards = (
            select(func.count(OrderRow.operation_id))
            .where(
                OrderRow.issuer_id == ContainerRow.issuer_id,
                OrderRow.container_group_id == ContainerRow.group_id,
            )
            .scalar_subquery()
        )
        query = (
            select(ContainerRow, cards)
            .order_by(ContainerRow.updated_at.desc(), ContainerRow.group_id)
            .limit(limit)
        )
        if issuer_id is not None:
            query = query.where(ContainerRow.issuer_id == issuer_id)
        if statuses:
            query = query.where(ContainerRow.status.in_(statuses))
        if order_id is not None:
            query = query.where(ContainerRow.order_id == order_id)
        return [(_container_from(row), int(count)) for row, count in self.session.execute(query)]

    def unchanged_since(
        self, statuses: tuple[str, ...], *, before: datetime, limit: int
    ) -> list[Container]:
        rows = self.session.scalars(
            select(ContainerRow)
            .where(ContainerRow.status.in_(statuses), ContainerRow.updated_at <= before)
            .order_by(ContainerRow.updated_at)
            .limit(limit)
        )
        return [_container_from(row) for row in rows]

    def members(self, issuer_id: str, group_id: str) -> list[Order]:
        """Every order placed into the container (its manifest), by card id then age."""
        rows = self.session.scalars(
            select(OrderRow)
            .where(OrderRow.issuer_id == issuer_id, OrderRow.container_group_id == group_id)
            .order_by(OrderRow.card_id, OrderRow.start_time)
        )
        return [self.track(row) for row in rows]
