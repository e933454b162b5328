"""The SQL unit of work: orders and their journal events committed together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from issuance.db.audit import SqlAuditLog
from issuance.db.config_repositories import SqlConfigRepository, SqlStockRepository
from issuance.db.containers import SqlContainerRepository
from issuance.db.engine import SQLITE_BEGIN
from issuance.db.feed import current_txid
from issuance.db.models import CardRow, DeliveryRow, EventRow, OrderRow
from issuance.db.outbox import DeliveryStatus
from issuance.db.production_reports import SqlBureauEventLedger
from issuance.db.repositories import SqlOrderRepository, copy_state
from issuance.db.sensitive import SqlSensitiveDataRepository
from issuance.domain.audit import PLATFORM, AuditAction, AuditEntry
from issuance.domain.orders import Order
from issuance.domain.retention import Retention
from issuance.services.unit_of_work import Collision


class _Session(Session):
    """A session whose flushes report a unique-key race as `Collision`, the automatic ones too.

    A unit of work staging several orders (a batch, a file import) flushes each one when it reads
    before staging the next; on PostgreSQL that flush, not the commit, is where an order meets a
    concurrent transaction's committed key. Callers already redo a collided transaction.
    """

    def flush(self, objects: Sequence[Any] | None = None) -> None:
        try:
            super().flush(objects)
        except IntegrityError as error:
            raise Collision(str(error.orig)) from None


class SqlUnitOfWork:
    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        read_only: bool = False,
        retention: Retention | None = None,
    ) -> None:
        self._session_factory = session_factory
        self.read_only = read_only
        self.retention = retention or Retention()

    def __enter__(self) -> Self:
        self.session = self._session_factory()
        if self.read_only:
            self.session.connection(execution_options={SQLITE_BEGIN: "DEFERRED"})
        self.orders = SqlOrderRepository(self.session, retention=self.retention)
        self.config = SqlConfigRepository(self.session)
        self.stock = SqlStockRepository(self.session)
        self.sensitive = SqlSensitiveDataRepository(self.session, self.orders.track)
        self.audit = SqlAuditLog(self.session)
        self.containers = SqlContainerRepository(self.session, self.orders.track)
        self.bureau_events = SqlBureauEventLedger(self.session)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        now = datetime.now(UTC)
        try:
            for order, row in list(self.orders.seen.values()):
                if order.events:
                    self._audit_purge(order, row)
                    copy_state(order, row, now)
            self.session.flush()  # order rows first: events refer to them
            for order, _row in list(self.orders.seen.values()):
                self._journal(order, now)
            self.session.commit()
        except IntegrityError as error:
            self.session.rollback()
            raise Collision(str(error.orig)) from None
        except Collision:
            self.session.rollback()
            raise
        except StaleDataError:
            self.session.rollback()
            raise Collision("the order was changed by another transaction") from None
        finally:
            self.orders.seen.clear()

    def rollback(self) -> None:
        self.session.rollback()
        self.orders.seen.clear()

    def _audit_purge(self, order: Order, row: OrderRow) -> None:
        """The destruction of an order's sensitive data is audited with it."""
        if order.sensitive_data_purged_at is not None and row.sensitive_data is not None:
            self.audit.record(
                AuditEntry(
                    at=order.sensitive_data_purged_at,
                    actor=PLATFORM,
                    action=AuditAction.SENSITIVE_DATA_PURGED,
                    issuer_id=order.issuer_id,
                    card_id=order.card_id,
                    operation_id=order.operation_id,
                    detail=f"at={order.production_status.value}",
                )
            )

    def _journal(self, order: Order, now: datetime) -> None:
        """One event row per domain event, and one delivery per notification endpoint."""
        issuer = self.config.issuer(order.issuer_id)
        endpoints = [e.endpoint_id for e in issuer.notification_endpoints] if issuer else []
        for event in order.events:
            sequence, txid = self._next_sequence(order.issuer_id, order.card_id)
            operation = {**event.operation, "sequence": sequence}
            row = EventRow(
                issuer_id=order.issuer_id,
                card_id=order.card_id,
                operation_id=order.operation_id,
                sequence=sequence,
                event_type=event.kind.value,
                payload=operation,
                occurred_at=event.occurred_at,
                recorded_at=now,
                txid=txid,
            )
            self.session.add(row)
            for endpoint_id in endpoints:
                self.session.add(
                    DeliveryRow(
                        event=row,
                        issuer_id=order.issuer_id,
                        endpoint_id=endpoint_id,
                        card_id=order.card_id,
                        status=DeliveryStatus.PENDING,
                        next_attempt_at=now,
                    )
                )
        order.events.clear()

    def _next_sequence(self, issuer_id: str, card_id: str) -> tuple[int, int]:
        """Increment the card's counter under its row lock: gap-free, one writer at a time.

        Also the event's change-feed `txid` (db/feed.py): on PostgreSQL this transaction's id,
        or the card's previous event's if higher, so the feed keeps the card's order; else 0.
        """
        connection = self.session.connection()  # Core: no ORM session to synchronize
        on_postgresql = connection.dialect.name == "postgresql"
        dialect = postgresql if on_postgresql else sqlite
        connection.execute(
            dialect.insert(CardRow)
            .values(issuer_id=issuer_id, card_id=card_id, last_sequence=0)
            .on_conflict_do_nothing()
        )
        txid = func.greatest(CardRow.last_txid, current_txid()) if on_postgresql else 0
        sequence, last_txid = connection.execute(
            update(CardRow)
            .where(CardRow.issuer_id == issuer_id, CardRow.card_id == card_id)
            .values(last_sequence=CardRow.last_sequence + 1, last_txid=txid)
            .returning(CardRow.last_sequence, CardRow.last_txid)
        ).one()
        return int(sequence), int(last_txid)


def unit_of_work_factory(
    engine: Engine, *, read_only: bool = False, retention: Retention | None = None
) -> Callable[[], SqlUnitOfWork]:
    sessions = sessionmaker(engine, class_=_Session, expire_on_commit=False)
    return lambda: SqlUnitOfWork(sessions, read_only=read_only, retention=retention)
