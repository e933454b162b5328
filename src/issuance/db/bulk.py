"""Core paths for large ingests: a batch of new orders in a handful of statements.

The per-card path (`SqlUnitOfWork`) costs ORM bookkeeping and two sequence statements per card;
a file import writes thousands of orders per transaction, so here a batch's keys and cards are
looked up with one query each and its rows (card counters, orders, journal events, outbox
deliveries, audit entries) are inserted with one statement per table: arrays unnested on
PostgreSQL, an `executemany` on SQLite (raised card counters: an `executemany` on both). The
rows are exactly the per-card path's: tests/integration/test_order_import_bulk.py compares them.

On PostgreSQL a batch makes four round trips: its look-ups (keys, cards in progress, the
issuer's stamp, the centres) sent together with BEGIN, then its event ids and card counters
together (db/pipelined.py), then one insert for the five tables, then COMMIT.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import structlog
from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    any_,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from issuance.db.bulk_rows import (
    AUDIT,
    CARDS,
    DELIVERIES,
    DRAWN_EVENT_IDS,
    EVENTS,
    ORDERS,
    Journaled,
    audit_values,
    draw_event_ids,
    event_ids_drawn,
    insert_tables,
    journal_rows,
)
from issuance.db.config_repositories import (
    CENTRE_DOCUMENTS,
    ISSUER_STAMP,
    SqlConfigRepository,
)
from issuance.db.engine import SQLITE_NOWAIT
from issuance.db.pipelined import pipelined
from issuance.db.unit_of_work import sqlite_writer_lock
from issuance.domain.audit import AuditEntry
from issuance.domain.centres import PersonalizationCentre
from issuance.domain.orders import Order
from issuance.domain.programs import IssuerConfig
from issuance.services.bulk_placing import Busy, LookUp, NewOrder, Placed
from issuance.services.unit_of_work import Collision

_CHUNK = 500  # keys per IN (...) list: well under every driver's bound-parameter limit
log = structlog.get_logger("issuance.db")

FIRST_ANALYZE = 500  # an issuer's orders written in bulk before its first ANALYZE (PostgreSQL)
ANALYZE_EVERY = 50_000  # then its count doubles between two ANALYZEs, up to this many orders


# Built once: building a statement and its cache key costs more than running it (84 µs against
# 24 µs for the key look-up, on SQLite), and a group of one order (services/grouped_ordering.py)
# runs a dozen of them.
_o, _c = ORDERS.c, CARDS.c
_ISSUER = bindparam("issuer_id", type_=String)
_KEYS: BindParameter[list[str]] = bindparam("keys", expanding=True)
_PLACED_OF_ISSUER = select(  # the key, then `Placed`'s fields in their order
    _o.issuer_request_id,
    _o.operation_id,
    _o.card_id,
    _o.request_fingerprint,
    _o.input_file_name,
    _o.request,
    _o.encrypted_data_digest,
).where(_o.issuer_id == _ISSUER)
_ACTIVE_OF_ISSUER = select(_o.active_card_id, _o.operation_id).where(_o.issuer_id == _ISSUER)
_COUNTERS_OF_ISSUER = select(_c.card_id, _c.last_sequence, _c.last_txid).where(
    _c.issuer_id == _ISSUER
)
_PLACED = _PLACED_OF_ISSUER.where(_o.issuer_request_id.in_(_KEYS))
_ACTIVE = _ACTIVE_OF_ISSUER.where(_o.active_card_id.in_(_KEYS))
_COUNTERS = _COUNTERS_OF_ISSUER.where(_c.card_id.in_(_KEYS))
# PostgreSQL's, sent together (db/pipelined.py), each list of keys bound as one array.
_ANY_KEY = any_(bindparam("keys", type_=ARRAY(String)))
_PLACED_ANY = _PLACED_OF_ISSUER.where(_o.issuer_request_id == _ANY_KEY)
_ACTIVE_ANY = _ACTIVE_OF_ISSUER.where(_o.active_card_id == _ANY_KEY)
_COUNTERS_LOCKED = _COUNTERS_OF_ISSUER.where(_c.card_id == _ANY_KEY).with_for_update()
_RAISED_COUNTERS = (
    update(CARDS)
    .where(_c.issuer_id == bindparam("i"), _c.card_id == bindparam("c"))
    .values(last_sequence=bindparam("s"), last_txid=bindparam("t"))
)


class SqlBulkIntake:
    """One transaction of a bulk batch (services/bulk_placing.py `BulkIntake`).

    `wait=False` (SQLite, for a group committed on the event loop): entering raises `Busy` at
    once when another writer of this process or of another holds the database.
    """

    def __init__(
        self, engine: Engine, statistics: PlannerStatistics | None = None, *, wait: bool = True
    ) -> None:
        self._engine = engine
        self._writer_lock = sqlite_writer_lock(engine)  # taken in turn with the API's writers
        self._statistics = statistics
        self._wait = wait
        self._written: Counter[str] = Counter()  # orders by issuer, for the statistics

    def __enter__(self) -> Self:
        if self._writer_lock is not None and not self._writer_lock.acquire(blocking=self._wait):
            raise Busy("another writer of this process holds the database")
        self._session = Session(self._engine)
        try:
            self._connection: Connection = self._session.connection(
                execution_options={SQLITE_NOWAIT: not self._wait}
            )
        except BaseException as error:
            self._session.close()
            if self._writer_lock is not None:
                self._writer_lock.release()
            if not self._wait and isinstance(error, OperationalError) and _locked(error):
                raise Busy("another process holds the database") from None
            raise
        self._config = SqlConfigRepository(self._session)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._session.rollback()
            self._session.close()
        finally:
            if self._writer_lock is not None:
                self._writer_lock.release()

    def issuer(self, issuer_id: str) -> IssuerConfig | None:
        return self._config.issuer(issuer_id)

    def centre(self, centre_id: str) -> PersonalizationCentre | None:
        return self._config.centre(centre_id)

    def look_up(
        self, issuer_id: str, request_ids: Collection[str], card_ids: Collection[str]
    ) -> LookUp:
        """`placed`, `active` and `issuer` at once: on PostgreSQL in one round trip, with the
        transaction's BEGIN and every centre, so that `centre` reads nothing (db/pipelined.py)."""
        if self._connection.dialect.name != "postgresql":
            placed = self.placed(issuer_id, request_ids) if request_ids else {}
            return LookUp(placed, self.active(issuer_id, card_ids), self.issuer(issuer_id))
        placed_rows, active_rows, stamp, centres = pipelined(
            self._connection,
            [
                (_PLACED_ANY, {"issuer_id": issuer_id, "keys": sorted(set(request_ids))}),
                (_ACTIVE_ANY, {"issuer_id": issuer_id, "keys": sorted(set(card_ids))}),
                (ISSUER_STAMP, {"issuer_id": issuer_id}),
                (CENTRE_DOCUMENTS, {}),
            ],
        )
        self._config.centres_read(centres)
        return LookUp(
            {str(key): Placed(*placed) for key, *placed in placed_rows},
            {str(card): str(operation) for card, operation in active_rows},
            self._config.issuer_stamped(issuer_id, stamp[0] if stamp else None),
        )

    def placed(self, issuer_id: str, request_ids: Collection[str]) -> dict[str, Placed]:
        found: dict[str, Placed] = {}
        for keys in _chunks(sorted(set(request_ids))):
            rows = self._connection.execute(_PLACED, {"issuer_id": issuer_id, "keys": keys})
            for key, *placed in rows:
                found[key] = Placed(*placed)
        return found

    def active(self, issuer_id: str, card_ids: Collection[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for cards in _chunks(sorted(set(card_ids))):
            rows = self._connection.execute(_ACTIVE, {"issuer_id": issuer_id, "keys": cards})
            found.update({str(card): str(operation) for card, operation in rows})
        return found

    def write(self, orders: Sequence[NewOrder], audit: Sequence[AuditEntry]) -> None:
        """Insert the orders with their journal and outbox rows, and the audit entries.

        A key or a card a concurrent writer took since the lookups fails an insert: `Collision`.
        Rows go in card order, so that two groups sharing cards (two API processes, a retry
        storm) wait on each other's index entries in the same order rather than deadlock; a
        deadlock PostgreSQL still breaks is a `Collision` too.
        """
        orders = sorted(orders, key=lambda new: new.order.card_id)
        writes: list[tuple[Table, list[dict[str, Any]]]] = []
        try:
            if orders:
                now = datetime.now(UTC)
                ids, txid, known = self._ids_and_counters(orders)
                sequences, fresh = self._sequences(orders, txid, known)
                journaled = [
                    Journaled(new.order, [numbers], new.endpoints)
                    for new, numbers in zip(orders, sequences, strict=True)
                ]
                writes += [
                    (CARDS, fresh),
                    (ORDERS, [_order_values(new) for new in orders]),
                    *journal_rows(journaled, ids, now),
                ]
            writes.append((AUDIT, [audit_values(e) for e in audit]))
            insert_tables(self._connection, writes)  # one statement on PostgreSQL
            if orders:
                self._written[orders[0].order.issuer_id] += len(orders)
                for new in orders:
                    new.order.events.clear()
        except (IntegrityError, OperationalError) as error:
            if not _lost_race(error):
                raise
            self._session.rollback()
            raise Collision(str(error.orig)) from None

    def commit(self) -> None:
        written, self._written = self._written, Counter()
        try:
            self._session.commit()
        except (IntegrityError, OperationalError) as error:
            if not _lost_race(error):
                raise
            self._session.rollback()
            raise Collision(str(error.orig)) from None
        if self._statistics is not None:
            for issuer_id, orders in written.items():
                self._statistics.grew(issuer_id, orders)

    def _ids_and_counters(
        self, orders: Sequence[NewOrder]
    ) -> tuple[list[int], int, dict[str, tuple[int, int]]]:
        """The events' ids and the txid (`draw_event_ids`), and the counters of the orders'
        cards this issuer has (sequence, txid), by card: locked on PostgreSQL (FOR UPDATE),
        where both reads go in one round trip."""
        issuer_id = orders[0].order.issuer_id
        cards = sorted({new.order.card_id for new in orders})
        if self._connection.dialect.name == "postgresql":
            drawn, counters = pipelined(
                self._connection,
                [
                    (DRAWN_EVENT_IDS, {"count": len(orders)}),
                    (_COUNTERS_LOCKED, {"issuer_id": issuer_id, "keys": cards}),
                ],
            )
            ids, txid = event_ids_drawn(drawn)
            return ids, txid, {card: (seq, last) for card, seq, last in counters}
        ids, txid = draw_event_ids(self._connection, len(orders))
        known: dict[str, tuple[int, int]] = {}
        for chunk in _chunks(cards):
            rows = self._connection.execute(_COUNTERS, {"issuer_id": issuer_id, "keys": chunk})
            known.update({card: (seq, last) for card, seq, last in rows})
        return ids, txid, known

    def _sequences(
        self, orders: Sequence[NewOrder], txid: int, known: dict[str, tuple[int, int]]
    ) -> tuple[list[tuple[int, int]], list[dict[str, Any]]]:
        """Each order's event (sequence, txid), its card's counter raised as the per-card path
        does; and the counter rows of the cards new to this issuer, to insert.

        A batch holds at most one new order per card (a second would be in progress), and each
        new order records one event. Existing counters are locked on PostgreSQL (FOR UPDATE), and
        a card a concurrent writer creates first makes the insert fail: the batch is redone card
        by card.
        """
        issuer_id = orders[0].order.issuer_id
        postgresql = self._connection.dialect.name == "postgresql"
        fresh: list[dict[str, Any]] = []
        raised: list[dict[str, Any]] = []
        sequences: list[tuple[int, int]] = []
        for new in orders:
            card_id = new.order.card_id
            sequence, last_txid = known.get(card_id, (0, 0))
            if len(new.order.events) != 1:
                raise ValueError("a bulk order records exactly its acceptance")
            assigned = (sequence + 1, max(last_txid, txid) if postgresql else 0)
            if card_id in known:
                raised.append({"i": issuer_id, "c": card_id, "s": assigned[0], "t": assigned[1]})
            else:
                fresh.append(
                    {
                        "issuer_id": issuer_id,
                        "card_id": card_id,
                        "last_sequence": assigned[0],
                        "last_txid": assigned[1],
                    }
                )
            sequences.append(assigned)
        if raised:
            self._connection.execute(_RAISED_COUNTERS, raised)
        return sequences, fresh


def bulk_intake_factory(
    engine: Engine, statistics: PlannerStatistics | None
) -> Callable[[], SqlBulkIntake]:
    return lambda: SqlBulkIntake(engine, statistics)


def planner_statistics(engine: Engine) -> PlannerStatistics | None:
    """One per process and database, shared by its bulk writers (None on SQLite)."""
    return PlannerStatistics(engine) if engine.dialect.name == "postgresql" else None


class PlannerStatistics:
    """Keeps PostgreSQL's planner statistics up with a bulk load, for each issuer.

    Without them (a fresh table, or autovacuum off or behind: it is off on this machine) the
    planner reads a batch's key look-up as a scan of every order of the issuer: 440 ms per
    look-up at 480,000 orders, and growing, where the unique index answers in 9 ms. SQLite's
    planner prefers the index without statistics.

    A new issuer in a large table is as unknown to the planner as a fresh table (it estimates a
    handful of rows, and scans), so orders are counted by issuer. Each issuer's count doubles
    between two ANALYZEs (500, 1,000, 2,000…, then every `ANALYZE_EVERY`): estimates are never
    more than twice behind, for a few ANALYZEs (each samples at most 30,000 rows a table). With
    the first ANALYZE at 5,000 orders of one process, a fresh database's first 10,000 orders
    from two API processes were looked up by scanning: 2-5 ms a look-up at 1,400-3,600 orders
    (auto_explain), PostgreSQL's CPU per order twice that of one process.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._written: Counter[str] = Counter()
        self._due: dict[str, int] = {}
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analyze")
        self._pending: list[Future[None]] = []

    def grew(self, issuer_id: str, orders: int) -> None:
        """Count `orders` more; when due, ANALYZE on a thread of its own.

        The group that made it due has committed: its requests are answered at once. Run in
        the group, it held them, and every request of the process behind them (the next group
        waits for the last): in bench/intake.py's half load with two API processes, the
        ANALYZE at about 19,000 orders came with a 0.4 s stall of one process's requests.
        """
        with self._lock:
            written = self._written[issuer_id] = self._written[issuer_id] + orders
            if written < self._due.get(issuer_id, FIRST_ANALYZE):
                return
            self._due[issuer_id] = written + min(max(written, FIRST_ANALYZE), ANALYZE_EVERY)
            self._pending = [f for f in self._pending if not f.done()]
            with suppress(RuntimeError):  # closed: the process is stopping, no ANALYZE
                self._pending.append(self._background.submit(self._analyze))

    def settle(self) -> None:
        """Wait for the ANALYZEs asked for so far (tests count them)."""
        with self._lock:
            pending = list(self._pending)
        wait(pending)

    def close(self) -> None:
        """Let a running ANALYZE end, before the engine's connections are closed."""
        self._background.shutdown(wait=True, cancel_futures=True)

    def _analyze(self) -> None:
        try:
            with self._engine.connect() as connection:
                connection.execute(text(f"ANALYZE {', '.join(t.name for t in _ANALYZED)}"))
                connection.commit()
        except Exception as error:  # the database is away: the next one will do
            log.warning("planner statistics not refreshed", error_type=type(error).__name__)


_ANALYZED = (ORDERS, CARDS, EVENTS, DELIVERIES, AUDIT)


# PostgreSQL's deadlock_detected and serialization_failure: the transaction lost to another.
_LOST_RACE_STATES = frozenset({"40P01", "40001"})


def _lost_race(error: IntegrityError | OperationalError) -> bool:
    """A concurrent writer took a key or a card first, or a lock cycle with it was broken."""
    return isinstance(error, IntegrityError) or (
        getattr(error.orig, "sqlstate", None) in _LOST_RACE_STATES
    )


def _locked(error: OperationalError) -> bool:
    """SQLite's `database is locked` (SQLITE_BUSY)."""
    return getattr(error.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


def _chunks(keys: list[str]) -> list[list[str]]:
    return [keys[start : start + _CHUNK] for start in range(0, len(keys), _CHUNK)]


def _order_values(new: NewOrder) -> dict[str, Any]:
    """The row `SqlOrderRepository.add` then `commit` write for a new order (see copy_state)."""
    order: Order = new.order
    return {
        "operation_id": order.operation_id,
        "issuer_id": order.issuer_id,
        "card_id": order.card_id,
        "active_card_id": order.card_id if order.end_time is None else None,
        "issuer_request_id": order.issuer_request_id,
        "request_fingerprint": new.fingerprint,
        "encrypted_data_digest": new.encrypted_data_digest,
        "consumer_id": order.consumer_id,
        "card_product_id": order.card_product_id,
        "input_file_name": order.input_file_name,
        "status": order.status.value,
        "production_status": order.production_status.value,
        "start_time": order.start_time,
        "end_time": order.end_time,
        "due_date": order.due_date,
        "cancellable_until": order.cancellable_until,
        "sla_standing": order.sla_standing,
        "hold": order.hold.value,
        "shipment": None,
        "shipment_status": None,
        "priority": order.priority,
        "materials": list(order.materials),
        "production_site": order.production_site,
        "error_code": order.error_code,
        "error": order.error,
        "reason": order.reason,
        "request": new.request,
        "sensitive_data": new.sealed[1] if new.sealed else None,
        "sensitive_key_id": new.sealed[0] if new.sealed else None,
        "purgeable_since": order.purgeable_since,
        "sensitive_data_purged_at": order.sensitive_data_purged_at,
        "updated_at": order.updated_at or order.start_time,
        "version": 1,  # the ORM's version counter starts at 1
    }
