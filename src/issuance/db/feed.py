"""The change feed: an issuer's events after a cursor, so that a stored cursor loses nothing.

Why not `event_id > cursor`: on PostgreSQL an id is taken when a row is inserted, not when its
transaction commits. Transaction A takes event 10, B takes 11 and commits first; a reader that
returned 11 and stored it would never see 10. So each event carries `txid`, the id of the
transaction that wrote it, and the feed, ordered by (txid, event_id), shows only events whose
txid is below the reader's snapshot `xmin`: every transaction below `xmin` has ended, and every
transaction still to commit has an id at or above it, so nothing can appear behind a cursor
later. The writer raises `txid` to the card's previous one when that is higher (a transaction
that took its id early may write a card after a later one did), which keeps each card's events
in `sequence` order without breaking the rule: a txid is never below its own transaction's id.

SQLite serialises writers (BEGIN IMMEDIATE): event ids are commit order there, `txid` stays 0.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Engine, Text, cast, func, select, tuple_

from issuance.db.engine import SQLITE_BEGIN
from issuance.db.models import EventRow
from issuance.domain.errors import InvalidRequest

CURSOR_VERSION = 1
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,200}$")  # unpadded base64url of a small JSON object


@dataclass(frozen=True, slots=True)
class Position:
    """Where a reader stands: the (txid, event_id) of the last event it was given."""

    txid: int
    event_id: int


START = Position(0, 0)  # before every event


@dataclass(frozen=True, slots=True)
class FeedPage:
    operations: list[dict[str, Any]]
    cursor: str
    has_more: bool


def current_txid() -> ColumnElement[int]:
    """PostgreSQL: this transaction's id (assigning one if it has none), epoch included."""
    return cast(cast(func.pg_current_xact_id(), Text), BigInteger)


def visible_horizon() -> ColumnElement[int]:
    """PostgreSQL: the lowest transaction id still running for this statement's snapshot."""
    return cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)


def encode_cursor(issuer_id: str, position: Position) -> str:
    """Opaque to clients; bound to the issuer so one issuer's cursor is refused on another."""
    document = {"v": CURSOR_VERSION, "i": issuer_id, "t": position.txid, "e": position.event_id}
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, *, issuer_id: str) -> Position:
    """The position in `cursor`; 400 `INVALID_CURSOR` on `after` if it is not one we gave."""
    if not _CURSOR.match(cursor):
        raise _invalid("is not a cursor returned by this feed")
    try:
        document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _invalid("is not a cursor returned by this feed") from None
    if not isinstance(document, dict) or set(document) != {"v", "i", "t", "e"}:
        raise _invalid("is not a cursor returned by this feed")
    if document["v"] != CURSOR_VERSION or not all(
        type(document[key]) is int and document[key] >= 0 for key in ("t", "e")
    ):
        raise _invalid("is not a cursor returned by this feed")
    if document["i"] != issuer_id:
        raise _invalid(f"this cursor was not issued for {issuer_id}")
    return Position(document["t"], document["e"])


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, field="after", code="INVALID_CURSOR")


def read_feed(engine: Engine, *, issuer_id: str, after: str | None, limit: int) -> FeedPage:
    """Up to `limit` events of the issuer after the cursor `after` (None: from the beginning).

    Each operation is the event's payload, the body of its notification. With nothing new, the
    cursor given is handed back unchanged, so a client may poll with it forever.
    """
    position = START if after is None else decode_cursor(after, issuer_id=issuer_id)
    query = (
        select(
            EventRow.txid, EventRow.event_id, EventRow.card_id, EventRow.sequence, EventRow.payload
        )
        .where(
            EventRow.issuer_id == issuer_id,
            tuple_(EventRow.txid, EventRow.event_id) > tuple_(position.txid, position.event_id),
        )
        .order_by(EventRow.txid, EventRow.event_id)
        .limit(limit + 1)
    )
    if engine.dialect.name == "postgresql":
        query = query.where(EventRow.txid < visible_horizon())
    with engine.connect() as connection:
        connection.execution_options(**{SQLITE_BEGIN: "DEFERRED"})  # never wait for writers
        rows = connection.execute(query).all()
    page = rows[:limit]
    operations = []
    for row in page:
        operation = dict(row.payload)
        operation.setdefault("cardId", row.card_id)
        operation.setdefault("sequence", row.sequence)
        operations.append(operation)
    if not page:
        cursor = after if after is not None else encode_cursor(issuer_id, START)
    else:
        cursor = encode_cursor(issuer_id, Position(page[-1].txid, page[-1].event_id))
    return FeedPage(operations, cursor, has_more=len(rows) > limit)
