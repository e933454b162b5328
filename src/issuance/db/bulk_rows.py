"""Many rows in one statement per table, and the journal of many orders written that way.

A file import's batch (db/bulk.py) and a unit of work that moves many orders at once
(db/unit_of_work.py: a production report's batch, a production run) write their journal events
and outbox deliveries here: the events' ids drawn at once, then one insert per table, where one
insert per event and per delivery cost a statement each (about 0.15 ms of client CPU apiece on
PostgreSQL, bench/production_report.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Dialect,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
)

from issuance.db.arrays import unnested
from issuance.db.engine import json_text
from issuance.db.feed import current_txid
from issuance.db.models import AuditRow, Base, CardRow, DeliveryRow, EventRow, OrderRow
from issuance.db.outbox import DeliveryStatus
from issuance.domain.audit import AuditEntry
from issuance.domain.events import OrderEvent
from issuance.domain.orders import Order


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


ORDERS, EVENTS, DELIVERIES, AUDIT, CARDS = (
    _table(m) for m in (OrderRow, EventRow, DeliveryRow, AuditRow, CardRow)
)
_TABLES = {t.name: t for t in (ORDERS, EVENTS, DELIVERIES, AUDIT, CARDS)}
DRAWN_EVENT_IDS = select(  # PostgreSQL: the next event ids, with this transaction's id
    func.nextval(func.pg_get_serial_sequence("events", "event_id")), current_txid()
).select_from(func.generate_series(1, bindparam("count", type_=Integer)))
_LAST_EVENT_ID = select(func.max(EVENTS.c.event_id))


def insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """The rows, all with the same keys (and only those columns, with their database defaults
    for the others): unnested on PostgreSQL, an executemany on SQLite (its executemany loops in
    C, in process: as cheap as one statement)."""
    insert_tables(connection, [(table, rows)])


def insert_tables(
    connection: Connection, writes: Sequence[tuple[Table, list[dict[str, Any]]]]
) -> None:
    """`insert_rows` for each table (those given no rows skipped), in one statement on
    PostgreSQL: each table's unnested insert but the last is a data-modifying CTE of the last.

    A group of orders writes five tables; one statement each cost a round trip, and the
    statement's own work on both sides, four times more. The inserts see the same snapshot,
    which none of them reads, and foreign keys are checked at the statement's end (events name
    their order, deliveries their event).
    """
    writes = [(table, rows) for table, rows in writes if rows]
    if not writes:
        return
    if connection.dialect.name == "postgresql":
        shape = tuple((table.name, tuple(rows[0])) for table, rows in writes)
        together = _together(shape)
        parameters: dict[str, list[Any]] = {}
        for unnested_insert, (_, rows) in zip(together.parts, writes, strict=True):
            parameters.update(unnested_insert.columns(rows))
        connection.execute(together.statement, parameters)
        return
    for table, rows in writes:
        plain = _plain_insert(table.name, tuple(rows[0]), connection.dialect)
        connection.exec_driver_sql(plain.sql, plain.parameters(rows))


def draw_event_ids(connection: Connection, count: int) -> tuple[list[int], int]:
    """The ids the events would get one insert at a time, taken at once; the txid (0 on SQLite).

    An `INSERT … RETURNING` of a thousand rows is one huge statement that psycopg parses again
    for every batch; plain inserts with the ids already known are not. PostgreSQL: drawn from
    the column's sequence, with this transaction's id in the same round trip. SQLite: the next
    rowids, which no one else can take while this transaction holds the write lock.
    """
    if connection.dialect.name == "postgresql":
        return event_ids_drawn(connection.execute(DRAWN_EVENT_IDS, {"count": count}).all())
    last = connection.scalar(_LAST_EVENT_ID) or 0
    return list(range(int(last) + 1, int(last) + 1 + count)), 0


def event_ids_drawn(rows: Sequence[Sequence[Any]]) -> tuple[list[int], int]:
    """The ids and the txid from the rows of `DRAWN_EVENT_IDS` (PostgreSQL)."""
    return sorted(int(i) for i, _ in rows), int(rows[0][1])


@dataclass(frozen=True, slots=True)
class Journaled:
    """An order's new events, each with its (sequence, txid), and the endpoints to notify."""

    order: Order
    numbers: Sequence[tuple[int, int]]
    endpoints: Sequence[str]


def write_journal(
    connection: Connection, journaled: Sequence[Journaled], event_ids: Sequence[int], now: datetime
) -> None:
    """One event row per event, and one outbox delivery per event and endpoint, in order: the
    rows one insert per event writes (db/unit_of_work.py `_journal`), in two statements.
    `event_ids`: from `draw_event_ids`, one per event."""
    insert_tables(connection, journal_rows(journaled, event_ids, now))


def journal_rows(
    journaled: Sequence[Journaled], event_ids: Sequence[int], now: datetime
) -> list[tuple[Table, list[dict[str, Any]]]]:
    """`write_journal`'s rows, to insert with others (`insert_tables`)."""
    ids = iter(event_ids)
    events: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for entry in journaled:
        order = entry.order
        for event, (sequence, txid) in zip(order.events, entry.numbers, strict=True):
            event_id = next(ids)
            events.append({"event_id": event_id, **event_values(order, event, sequence, txid, now)})
            deliveries.extend(
                delivery_values(order, event_id, endpoint_id, now)
                for endpoint_id in entry.endpoints
            )
    return [(EVENTS, events), (DELIVERIES, deliveries)]


def event_values(
    order: Order, event: OrderEvent, sequence: int, txid: int, now: datetime
) -> dict[str, Any]:
    """A journal event's row, but for its id."""
    return {
        "issuer_id": order.issuer_id,
        "card_id": order.card_id,
        "operation_id": order.operation_id,
        "sequence": sequence,
        "event_type": event.kind.value,
        "payload": {**event.operation, "sequence": sequence},
        "occurred_at": event.occurred_at,
        "recorded_at": now,
        "txid": txid,
    }


def delivery_values(order: Order, event_id: int, endpoint_id: str, now: datetime) -> dict[str, Any]:
    """The outbox row that notifies one endpoint of one event."""
    return {
        "event_id": event_id,
        "issuer_id": order.issuer_id,
        "endpoint_id": endpoint_id,
        "card_id": order.card_id,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
    }


def audit_values(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as its row."""
    return {
        "at": entry.at,
        "actor_kind": entry.actor.kind.value,
        "actor_id": entry.actor.actor_id,
        "actor_issuer_id": entry.actor.issuer_id,
        "action": entry.action,
        "issuer_id": entry.issuer_id,
        "card_id": entry.card_id,
        "operation_id": entry.operation_id,
        "detail": entry.detail,
    }


class _Unnested:
    """PostgreSQL: a table's rows inserted from one array per column, in one statement.

    A group's inserts as executemanys were 7% of the API's samples holding the GIL at
    saturation (py-spy), in psycopg's per-row pipeline (db/arrays.py). Unnested, a file import
    of 20,000 lines went from 422-449 to 377-393 µs of CPU per card, single-card intake from
    1.59 to 1.54 ms per order (means of 5 runs; bench/). JSON goes as text and is cast on the
    server: a JSON array's elements cannot be typed one by one.
    """

    def __init__(self, table: Table, names: Sequence[str], prefix: str) -> None:
        """`prefix`: before each bound array's name and the FROM clause's, so that several
        tables' inserts can share a statement."""
        kinds = {name: table.c[name].type for name in names}
        self._json = [name for name, kind in kinds.items() if isinstance(kind, JSON)]
        self._prefix = prefix
        rows = unnested(
            {prefix + name: _element(kind) for name, kind in kinds.items()},
            name=f"{prefix}unnested",
        )
        values = [rows.c[prefix + n] for n in names]
        typed = [
            cast(v, kinds[n]) if n in self._json else v for n, v in zip(names, values, strict=True)
        ]
        self.statement = insert(table).from_select(list(names), select(*typed))
        self._names = list(names)

    def columns(self, rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
        """The rows, as the arrays the statement unnests."""
        columns = {name: [row[name] for row in rows] for name in self._names}
        for name in self._json:  # as SQLAlchemy's JSON type writes them: None is JSON null
            columns[name] = [json_text(value) for value in columns[name]]
        return {self._prefix + name: values for name, values in columns.items()}


class _Together:
    """PostgreSQL: several tables' unnested inserts as one statement (`insert_tables`)."""

    def __init__(self, shape: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        self.parts = [
            _Unnested(_TABLES[table], names, prefix=f"t{number}_")
            for number, (table, names) in enumerate(shape)
        ]
        *before, last = (part.statement for part in self.parts)
        self.statement = last.add_cte(
            *(statement.cte(f"t{number}_written") for number, statement in enumerate(before))
        )


class _PlainInsert:
    """SQLite: an INSERT of the given columns and its rows as tuples, through the columns' own
    type processors (JSON, datetimes), taken from SQLAlchemy once.

    SQLAlchemy's executemany handles each row's parameters again through its compiled
    statement: inserting 32 orders' rows in one executemany took 48 µs a row through it, and 40
    as tuples (bench/intake.py's order).
    """

    def __init__(self, table: Table, names: Sequence[str], dialect: Dialect) -> None:
        compiled = insert(table).values({n: bindparam(n) for n in names}).compile(dialect=dialect)
        defaulted = set(compiled.positiontup or ()) - set(names)
        if defaulted:  # SQLAlchemy would fill them in; PostgreSQL's unnested insert does not
            raise ValueError(f"rows of {table.name} must give {sorted(defaulted)}")
        self.sql = str(compiled)
        self._columns = [
            (name, _faster(table.c[name].type.dialect_impl(dialect).bind_processor(dialect)))
            for name in compiled.positiontup or ()
        ]

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        columns = self._columns
        return [
            tuple(row[name] if process is None else process(row[name]) for name, process in columns)
            for row in rows
        ]


_PROBE = datetime(1999, 12, 31, 23, 59, 58, 7, tzinfo=timezone(timedelta(hours=2)))


def _isoformat(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(" ", "microseconds")[:26]


def _faster(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """SQLite's datetime text written by `isoformat` (C) rather than SQLAlchemy's `%` format,
    a quarter of the time, where both write the same text (checked on a probe): a group's
    rows hold eleven datetimes an order."""
    try:
        same = process is not None and process(_PROBE) == _isoformat(_PROBE)
    except (TypeError, ValueError, AttributeError):  # not a datetime column
        same = False
    return _isoformat if same else process


@lru_cache(maxsize=32)
def _plain_insert(table: str, names: tuple[str, ...], dialect: Dialect) -> _PlainInsert:
    return _PlainInsert(_TABLES[table], names, dialect)


@lru_cache(maxsize=32)
def _together(shape: tuple[tuple[str, tuple[str, ...]], ...]) -> _Together:
    return _Together(shape)


def _element(kind: Any) -> Any:
    """The type of an array's elements for a column of type `kind`."""
    return Text() if isinstance(kind, (JSON, String)) else kind
