"""The SQL unit of work: orders and their journal events committed together."""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import BigInteger, Engine, String, Text, bindparam, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from issuance.db.arrays import unnested
from issuance.db.audit import SqlAuditLog
from issuance.db.bulk_rows import (
    Journaled,
    delivery_values,
    draw_event_ids,
    event_values,
    write_journal,
)
from issuance.db.config_repositories import SqlConfigRepository, SqlStockRepository
from issuance.db.containers import SqlContainerRepository
from issuance.db.engine import SQLITE_BEGIN
from issuance.db.feed import current_txid
from issuance.db.models import CardRow, DeliveryRow, EventRow, OrderRow
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
    """Orders, configuration, stock, sealed data and audit over one session.

    On SQLite a writer also holds `writer_lock` (one per engine, so per process) from entry to
    exit: SQLite admits one writer anyway, and threads queueing on a lock are served in turn,
    where threads polling SQLite's busy handler sleep up to 100 ms between tries (intake p99 at
    half load: 74.5 ms with polling, 29.3 ms with the lock; same throughput).
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        read_only: bool = False,
        retention: Retention | None = None,
        writer_lock: threading.RLock | None = None,
    ) -> None:
        self._session_factory = session_factory
        self.read_only = read_only
        self.retention = retention or Retention()
        self._writer_lock = None if read_only else writer_lock

    def __enter__(self) -> Self:
        if self._writer_lock is not None:
            self._writer_lock.acquire()
        try:
            return self._open()
        except BaseException:
            if self._writer_lock is not None:
                self._writer_lock.release()
            raise

    def _open(self) -> Self:
        self.session = self._session_factory()
        if self.read_only:
            self.session.connection(execution_options=_READ_ONLY[self._dialect()])
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
        try:
            self.session.rollback()
            self.session.close()
        finally:
            if self._writer_lock is not None:
                self._writer_lock.release()

    def _dialect(self) -> str:
        bind = self.session.get_bind()
        return "postgresql" if bind.dialect.name == "postgresql" else "sqlite"

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
            changed = [order for order, _row in self.orders.seen.values() if order.events]
            if len(changed) > 1:
                self._journal_together(changed, now)
            elif changed:
                self._journal(changed[0], now)  # one order alone: three statements, the fewest
            self.audit.write()
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
            self.orders.forget()
            self.audit.forget()

    def rollback(self) -> None:
        self.session.rollback()
        self.orders.forget()
        self.audit.forget()

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

    def _endpoints(self, issuer_id: str) -> list[str]:
        issuer = self.config.issuer(issuer_id)
        return [e.endpoint_id for e in issuer.notification_endpoints] if issuer else []

    def _journal(self, order: Order, now: datetime) -> None:
        """One event row per domain event, and one delivery per notification endpoint."""
        if not order.events:
            return
        endpoints = self._endpoints(order.issuer_id)
        last, txid = self._advance_sequence(order.issuer_id, order.card_id, len(order.events))
        connection = self.session.connection()  # Core: the ORM adds ~0.5 ms a row here
        for sequence, event in enumerate(order.events, start=last - len(order.events) + 1):
            values = event_values(order, event, sequence, txid, now)
            event_id = connection.execute(_INSERT_EVENT, values).scalar_one()
            if endpoints:
                connection.execute(
                    _INSERT_DELIVERY,
                    [delivery_values(order, event_id, e, now) for e in endpoints],
                )
        order.events.clear()

    def _journal_together(self, orders: list[Order], now: datetime) -> None:
        """The events of many orders (a report's batch, a production run) in four statements:
        their cards' counters in one upsert, the event ids drawn at once, one insert for the
        events and one for their deliveries (db/bulk_rows.py); one at a time, each order took
        three. The rows are `_journal`'s, numbered in the same order."""
        connection = self.session.connection()
        counts: Counter[tuple[str, str]] = Counter()
        for order in orders:
            counts[(order.issuer_id, order.card_id)] += len(order.events)
        last = _advance_counters(connection, counts)
        following = {card: last[card][0] - count + 1 for card, count in counts.items()}
        journaled = []
        for order in orders:
            card = (order.issuer_id, order.card_id)
            first, txid = following[card], last[card][1]
            following[card] = first + len(order.events)
            numbers = [(sequence, txid) for sequence in range(first, following[card])]
            journaled.append(Journaled(order, numbers, self._endpoints(order.issuer_id)))
        event_ids, _ = draw_event_ids(connection, sum(counts.values()))
        write_journal(connection, journaled, event_ids, now)
        for order in orders:
            order.events.clear()

    def _advance_sequence(self, issuer_id: str, card_id: str, count: int) -> tuple[int, int]:
        """Move the card's counter `count` ahead in one upsert under its row lock; the new last.

        Gap-free, one writer at a time; the events get `last - count + 1` … `last`. Also the
        events' change-feed `txid` (db/feed.py): on PostgreSQL this transaction's id, or the
        card's previous event's if higher, so the feed keeps the card's order; else 0.
        """
        connection = self.session.connection()  # Core: no ORM session to synchronize
        values = {"issuer_id": issuer_id, "card_id": card_id, "count": count}
        last, last_txid = connection.execute(_advance_statement(connection), values).one()
        return int(last), int(last_txid)


# How a read-only unit of work reads. SQLite: a DEFERRED transaction (a snapshot, and no wait
# for writers). PostgreSQL: autocommit, each statement its own snapshot as in the default READ
# COMMITTED transaction, without the BEGIN and ROLLBACK round trips (a status read: 2 of 4).
_READ_ONLY: dict[str, dict[str, Any]] = {
    "sqlite": {SQLITE_BEGIN: "DEFERRED"},
    "postgresql": {"isolation_level": "AUTOCOMMIT"},
}
_INSERT_EVENT = insert(EventRow).returning(EventRow.event_id)
_INSERT_DELIVERY = insert(DeliveryRow)
_ADVANCE: dict[str, Any] = {}  # dialect name → the statement (built once per process)


def _advance_counters(
    connection: Any, counts: Counter[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int]]:
    """Each card's counter moved ahead by its count; the new (last, txid) by (issuer, card).

    Cards in key order, so two transactions lock shared counters in the same order. PostgreSQL:
    one upsert over unnested arrays. SQLite: `_advance_statement` per card, in process.
    """
    cards = sorted(counts)
    if connection.dialect.name != "postgresql":
        statement, advanced = _advance_statement(connection), {}
        for issuer_id, card_id in cards:
            values = {
                "issuer_id": issuer_id,
                "card_id": card_id,
                "count": counts[issuer_id, card_id],
            }
            last, txid = connection.execute(statement, values).one()
            advanced[issuer_id, card_id] = (int(last), int(txid))
        return advanced
    rows = connection.execute(
        _ADVANCE_TOGETHER,
        {
            "issuer_id": [issuer_id for issuer_id, _ in cards],
            "card_id": [card_id for _, card_id in cards],
            "count": [counts[card] for card in cards],
        },
    )
    return {(issuer_id, card_id): (int(last), int(txid)) for issuer_id, card_id, last, txid in rows}


def _advance_together() -> Any:
    """PostgreSQL: `_advance_statement` for many cards, from one array per column."""
    counted = unnested({"issuer_id": Text(), "card_id": Text(), "count": BigInteger()})
    txid = current_txid()
    statement = postgresql.insert(CardRow).from_select(
        ["issuer_id", "card_id", "last_sequence", "last_txid"],
        select(counted.c.issuer_id, counted.c.card_id, counted.c.count, txid),
    )
    return statement.on_conflict_do_update(
        index_elements=[CardRow.issuer_id, CardRow.card_id],
        set_={
            "last_sequence": CardRow.last_sequence + statement.excluded.last_sequence,
            "last_txid": func.greatest(CardRow.last_txid, statement.excluded.last_txid),
        },
    ).returning(CardRow.issuer_id, CardRow.card_id, CardRow.last_sequence, CardRow.last_txid)


_ADVANCE_TOGETHER = _advance_together()


def _advance_statement(connection: Any) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … RETURNING, on both databases (SQLite 3.35+)."""
    name = connection.dialect.name
    if name not in _ADVANCE:
        on_postgresql = name == "postgresql"
        dialect: Any = postgresql if on_postgresql else sqlite
        count = bindparam("count", type_=BigInteger)
        txid: Any = current_txid() if on_postgresql else literal(0, BigInteger)
        statement = dialect.insert(CardRow).values(
            issuer_id=bindparam("issuer_id", type_=String),
            card_id=bindparam("card_id", type_=String),
            last_sequence=count,
            last_txid=txid,
        )
        _ADVANCE[name] = statement.on_conflict_do_update(
            index_elements=[CardRow.issuer_id, CardRow.card_id],
            set_={
                "last_sequence": CardRow.last_sequence + statement.excluded.last_sequence,
                "last_txid": func.greatest(CardRow.last_txid, txid) if on_postgresql else txid,
            },
        ).returning(CardRow.last_sequence, CardRow.last_txid)
    return _ADVANCE[name]


def unit_of_work_factory(
    engine: Engine, *, read_only: bool = False, retention: Retention | None = None
) -> Callable[[], SqlUnitOfWork]:
    sessions = sessionmaker(engine, class_=_Session, expire_on_commit=False)
    lock = sqlite_writer_lock(engine)
    return lambda: SqlUnitOfWork(
        sessions, read_only=read_only, retention=retention, writer_lock=lock
    )


_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def sqlite_writer_lock(engine: Engine) -> threading.RLock | None:
    """One lock per SQLite engine, shared by every writer over it; None on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return None
    with _LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(engine, threading.RLock())
