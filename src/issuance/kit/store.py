"""The issuer's copy of its cards' state, written once per real change, whatever arrives twice.

`record` takes reports of operations (a notification's, a change-feed page's, a productionStatus
answer's) and, in one transaction per call:

* skips the whole call when its `webhook-id` was processed before (a retry of a delivered message);
* remembers each report by `(operationId, sequence)`, or by its content when it has no sequence,
  so a duplicate is recognised whenever it comes back;
* replaces the stored operation only with a newer report (`rules.supersedes`);
* for each real change, queues a row in `d1_changes` for the issuer's handler (`dispatch.py`).

Storing the change and queuing the handler call in the same commit is what makes a crash safe:
the change is never lost (the queue row survives) and never applied twice (the report is
remembered), and the handler runs after the commit, so it never sees a state that was rolled back.

Concurrent writers of one card are serialised by bumping that card's row first: a row lock on
PostgreSQL, the database write lock on SQLite (taken before anything is read, so what is read
next is current). Reports are handled in card order, so two messages never lock in opposite order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, select, update
from sqlalchemy.pool import StaticPool

from issuance.contract.operations import Operation
from issuance.kit import schema
from issuance.kit.rules import Report, content, event_key, supersedes
from issuance.kit.sql import insert_ignore, lock_card, note_sequence

DEFAULT_URL = "sqlite:///issuer-d1.db"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One report of an operation: parsed for the rules, raw to be kept whole."""

    operation: Operation
    raw: dict[str, Any]

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Incoming:
        return cls(Operation.model_validate(raw), raw)

    @classmethod
    def from_model(cls, operation: Operation) -> Incoming:
        return cls(operation, operation.model_dump(mode="json", by_alias=True, exclude_none=True))


class Outcome(Enum):
    CHANGED = "changed"  # a real change: stored, and queued for the handler
    UNCHANGED = "unchanged"  # newer, but the same state (only the sequence moved)
    STALE = "stale"  # older than what is stored
    DUPLICATE = "duplicate"  # received before


@dataclass(frozen=True, slots=True)
class Recorded:
    replayed: bool = False  # the webhook-id was processed before: nothing was done
    outcomes: list[Outcome] = field(default_factory=list)
    change_ids: list[int] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return self.outcomes.count(outcome)


def make_engine(url: str) -> Engine:
    """An engine for the kit's own URL; SQLite waits for the write lock instead of failing."""
    if url.startswith("sqlite"):
        memory = url in {"sqlite://", "sqlite:///:memory:"}
        return create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            poolclass=StaticPool if memory else None,
        )
    return create_engine(url, pool_pre_ping=True)


def _epoch(value: str | None) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp() if value else None
    except (ValueError, OverflowError):
        return None


class CardStore:
    """State per card and operation in the issuer's database (SQLite unless told otherwise)."""

    def __init__(
        self, database: str | Engine = DEFAULT_URL, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = make_engine(database) if isinstance(database, str) else database
        self.clock = clock

    def create_schema(self) -> None:
        """Create the `d1_*` tables that do not exist yet (never alters existing ones)."""
        schema.metadata.create_all(self.engine)

    def record(
        self,
        issuer_id: str,
        items: Sequence[Incoming],
        *,
        message_id: str | None = None,
        authoritative: bool = False,
        feed_cursor: str | None = None,
    ) -> Recorded:
        """Apply the reports in one transaction; `feed_cursor` is saved in the same commit."""
        now = self.clock()
        with self.engine.begin() as connection:
            if message_id is not None and not insert_ignore(
                connection, schema.messages, {"message_id": message_id, "received_at": now}
            ):
                return Recorded(replayed=True)
            outcomes, change_ids = [], []
            for item in sorted(items, key=lambda item: item.operation.card_id):
                lock_card(connection, issuer_id, item.operation.card_id, now)
                outcome, change_id = self._apply(connection, issuer_id, item, now, authoritative)
                outcomes.append(outcome)
                change_ids.extend([change_id] if change_id is not None else [])
            if feed_cursor is not None:
                self._save_cursor(connection, issuer_id, feed_cursor, now)
        return Recorded(outcomes=outcomes, change_ids=change_ids)

    def _apply(
        self,
        connection: Connection,
        issuer_id: str,
        item: Incoming,
        now: float,
        authoritative: bool,
    ) -> tuple[Outcome, int | None]:
        operation, raw = item.operation, item.raw
        fresh = insert_ignore(
            connection,
            schema.received,
            {
                "issuer_id": issuer_id,
                "operation_id": operation.operation_id,
                "event_key": event_key(raw, operation.sequence),
                "card_id": operation.card_id,
                "sequence": operation.sequence,
                "received_at": now,
            },
        )
        if fresh and operation.sequence is not None:
            note_sequence(connection, issuer_id, operation.card_id, operation.sequence)
        if not fresh and not authoritative:
            return Outcome.DUPLICATE, None
        key = (schema.operations.c.issuer_id == issuer_id) & (
            schema.operations.c.operation_id == operation.operation_id
        )
        row = connection.execute(select(schema.operations.c.body).where(key)).first()
        values = {
            "card_id": operation.card_id,
            "status": operation.status,
            "step": operation.details.status,
            "sequence": operation.sequence,
            "due_at": _epoch(operation.details.due_date),
            "body": json.dumps(raw),
            "updated_at": now,
        }
        if row is None:
            connection.execute(
                schema.operations.insert().values(
                    issuer_id=issuer_id, operation_id=operation.operation_id, **values
                )
            )
            return Outcome.CHANGED, self._queue(connection, issuer_id, item, None, now)
        stored_raw = json.loads(row.body)
        stored = Operation.model_validate(stored_raw)
        if not supersedes(Report.of(operation), Report.of(stored), authoritative=authoritative):
            return (Outcome.STALE if fresh else Outcome.DUPLICATE), None
        connection.execute(update(schema.operations).where(key).values(**values))
        if content(raw) == content(stored_raw):
            return Outcome.UNCHANGED, None
        return Outcome.CHANGED, self._queue(connection, issuer_id, item, row.body, now)

    @staticmethod
    def _queue(
        connection: Connection, issuer_id: str, item: Incoming, previous: str | None, now: float
    ) -> int:
        result = connection.execute(
            schema.changes.insert().values(
                issuer_id=issuer_id,
                card_id=item.operation.card_id,
                operation_id=item.operation.operation_id,
                body=json.dumps(item.raw),
                previous=previous,
                created_at=now,
                available_at=now,
                attempts=0,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    # --- what the issuer reads ---

    def operations(self, issuer_id: str, card_id: str | None = None) -> list[Operation]:
        """Stored operations (of one card, or all), oldest first by start time."""
        query = select(schema.operations.c.body).where(schema.operations.c.issuer_id == issuer_id)
        if card_id is not None:
            query = query.where(schema.operations.c.card_id == card_id)
        with self.engine.connect() as connection:
            found = [Operation.model_validate_json(body) for body in connection.scalars(query)]
        return sorted(found, key=lambda operation: (operation.start_time, operation.operation_id))

    # --- the change feed's position ---

    def feed_cursor(self, issuer_id: str) -> str | None:
        query = select(schema.feed_cursors.c.cursor).where(
            schema.feed_cursors.c.issuer_id == issuer_id
        )
        with self.engine.connect() as connection:
            return connection.scalar(query)

    @staticmethod
    def _save_cursor(connection: Connection, issuer_id: str, cursor: str, now: float) -> None:
        values = {"issuer_id": issuer_id, "cursor": cursor, "updated_at": now}
        if not insert_ignore(connection, schema.feed_cursors, values):
            connection.execute(
                update(schema.feed_cursors)
                .where(schema.feed_cursors.c.issuer_id == issuer_id)
                .values(cursor=cursor, updated_at=now)
            )

    def forget_messages(self, *, older_than: float) -> int:
        """Drop remembered `webhook-id`s older than `older_than` (epoch seconds); how many.

        Safe at any age: a message replayed after this is still recognised report by report.
        """
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(schema.messages).where(schema.messages.c.received_at < older_than)
            )
        return int(result.rowcount)
