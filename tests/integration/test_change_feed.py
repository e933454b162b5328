"""The change feed on both databases: complete, in order, resumable, and blind to commit races.

On PostgreSQL an event may be readable only once every older transaction of the cluster has
ended (tests in other processes included), so reads that expect news poll for a few seconds.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Self

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from issuance.db.feed import START, FeedPage, Position, decode_cursor, encode_cursor, read_feed
from issuance.db.models import EventRow
from issuance.db.unit_of_work import SqlUnitOfWork
from issuance.domain.errors import InvalidRequest
from issuance.domain.orders import Order
from issuance.domain.statuses import ProductionStatus
from issuance.platform import Platform
from tests.factories import DEMO, OTHER, new_card_id

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
PATIENCE = 10.0  # seconds a read may wait for other processes' transactions to end


def _place(platform: Platform, card_id: str, *, issuer_id: str = DEMO) -> None:
    order = Order.accept(operation_id=f"op-{card_id}", issuer_id=issuer_id, card_id=card_id, at=NOW)
    with platform.uow() as uow:
        uow.orders.add(order, request={}, fingerprint="f" * 64, sealed=None)
        uow.commit()


def _move(platform: Platform, card_id: str, target: ProductionStatus) -> None:
    with platform.uow() as uow:
        order = uow.orders.active_for_card(DEMO, card_id)
        assert order is not None
        order.move_to(target, at=NOW)
        uow.commit()


def _journal(engine: Engine, issuer_id: str = DEMO) -> list[dict[str, Any]]:
    """Every payload of the issuer in event_id order (commit order when writes do not overlap)."""
    with engine.connect() as connection:
        return list(
            connection.scalars(
                select(EventRow.payload)
                .where(EventRow.issuer_id == issuer_id)
                .order_by(EventRow.event_id)
            )
        )


def _read(
    engine: Engine, after: str | None = None, *, limit: int = 1000, issuer_id: str = DEMO
) -> FeedPage:
    return read_feed(engine, issuer_id=issuer_id, after=after, limit=limit)


def _read_until(
    engine: Engine, count: int, after: str | None = None, *, issuer_id: str = DEMO
) -> FeedPage:
    """The first page holding `count` operations (or what there is when patience runs out)."""
    deadline = time.monotonic() + PATIENCE
    page = _read(engine, after, issuer_id=issuer_id)
    while len(page.operations) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        page = _read(engine, after, issuer_id=issuer_id)
    return page


def _cursor_of(document: object) -> str:
    """A cursor-looking string around any JSON document."""
    raw = json.dumps(document).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _history(platform: Platform) -> list[str]:
    """Three cards, their changes interleaved: eight events of DEMO, one of OTHER."""
    cards = [new_card_id() for _ in range(3)]
    for card_id in cards:
        _place(platform, card_id)
    _place(platform, new_card_id(), issuer_id=OTHER)
    _move(platform, cards[1], ProductionStatus.DATA_PREPARED)
    _move(platform, cards[0], ProductionStatus.DATA_PREPARED)
    _move(platform, cards[1], ProductionStatus.CARD_PROD_READY)
    _move(platform, cards[2], ProductionStatus.DATA_EXCEPTION)
    _move(platform, cards[0], ProductionStatus.DATA_EXCEPTION)
    return cards


def test_the_feed_holds_every_event_of_the_issuer_in_order(platform: Platform) -> None:
    _history(platform)
    expected = _journal(platform.engine)
    assert len(expected) == 8

    page = _read_until(platform.engine, 8)

    assert page.operations == expected  # each one exactly as its notification carried it
    assert {o["cardId"] for o in page.operations} == {o["cardId"] for o in expected}
    assert not page.has_more
    by_card: dict[str, list[int]] = {}
    for operation in page.operations:
        by_card.setdefault(operation["cardId"], []).append(operation["sequence"])
    assert all(s == list(range(1, len(s) + 1)) for s in by_card.values())


def test_pages_resumed_from_their_cursors_equal_one_read(platform: Platform) -> None:
    _history(platform)
    whole = _read_until(platform.engine, 8)
    assert len(whole.operations) == 8

    pages, cursor = [], None
    for _ in range(10):
        page = _read(platform.engine, cursor, limit=3)
        pages.append(page)
        cursor = page.cursor
        if not page.has_more:
            break
    assert [len(p.operations) for p in pages] == [3, 3, 2]
    assert [o for p in pages for o in p.operations] == whole.operations
    assert pages[-1].cursor == whole.cursor

    exactly = _read(platform.engine, None, limit=8)
    assert (len(exactly.operations), exactly.has_more) == (8, False)


def test_with_nothing_new_the_same_cursor_comes_back(platform: Platform) -> None:
    empty = _read(platform.engine)
    assert (empty.operations, empty.has_more) == ([], False)
    assert decode_cursor(empty.cursor, issuer_id=DEMO) == START
    assert _read(platform.engine, empty.cursor).cursor == empty.cursor

    _history(platform)
    caught_up = _read_until(platform.engine, 8, empty.cursor)
    for _ in range(3):
        again = _read(platform.engine, caught_up.cursor)
        assert (again.operations, again.cursor) == ([], caught_up.cursor)

    card_id = new_card_id()
    _place(platform, card_id)
    news = _read_until(platform.engine, 1, caught_up.cursor)
    assert [o["cardId"] for o in news.operations] == [card_id]


def test_another_issuers_events_never_appear(platform: Platform) -> None:
    other_card = new_card_id()
    _place(platform, other_card, issuer_id=OTHER)
    _history(platform)  # one more card of OTHER

    demo = _read_until(platform.engine, 8)
    other = _read_until(platform.engine, 2, issuer_id=OTHER)

    assert demo.operations == _journal(platform.engine, DEMO)
    assert other.operations == _journal(platform.engine, OTHER)
    assert other_card in {o["cardId"] for o in other.operations}
    assert not {o["cardId"] for o in demo.operations} & {o["cardId"] for o in other.operations}


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "djEuMTIuMzQ",  # base64url of "v1.12.34": not ours
        encode_cursor(DEMO, START) + "=",
        encode_cursor(OTHER, Position(0, 5)),  # another issuer's
        encode_cursor(DEMO, Position(-1, 5)),
        _cursor_of({"v": 2, "i": DEMO, "t": 0, "e": 5}),
        _cursor_of({"v": 1, "i": DEMO, "t": 0, "e": "5"}),
        _cursor_of({"v": 1, "i": DEMO, "t": 0, "e": True}),
        _cursor_of({"v": 1, "i": DEMO, "t": 0}),
        _cursor_of([1, DEMO, 0, 5]),
        "x" * 500,
    ],
)
def test_a_cursor_not_given_by_the_feed_is_refused_naming_after(
    platform: Platform, cursor: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        _read(platform.engine, cursor)
    assert (refused.value.code, refused.value.field) == ("INVALID_CURSOR", "after")


# --- PostgreSQL: transactions commit out of id order; the feed must not be fooled ---


@pytest.fixture
def postgresql_platform(platform: Platform) -> Platform:
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: event ids are commit order there")
    return platform


class _PausedBeforeCommit(SqlUnitOfWork):
    """A unit of work that writes its events, lets `meanwhile` run, and only then commits."""

    def __init__(self, platform: Platform, meanwhile: Callable[[Session], None]) -> None:
        super().__init__(sessionmaker(platform.engine, expire_on_commit=False))
        self.meanwhile = meanwhile

    def __enter__(self) -> Self:
        super().__enter__()
        event.listen(self.session, "before_commit", self._write_then_wait, once=True)
        return self

    def _write_then_wait(self, session: Session) -> None:
        session.flush()  # the events are inserted: their ids are taken, the commit is not
        self.meanwhile(session)


def test_a_cursor_never_passes_a_transaction_still_open(postgresql_platform: Platform) -> None:
    """Slow takes event id n and stays open; fast takes n + 1 and commits; a poller reads.

    Had the poller been given fast's event, its cursor would be past n, and slow's event, once
    committed, would be skipped forever (what `event_id > cursor` does).
    """
    platform = postgresql_platform
    slow_card, fast_card = new_card_id(), new_card_id()
    received: list[dict[str, Any]] = []
    cursors = [_read(platform.engine).cursor]
    while_open: list[Any] = []

    def poll() -> None:
        page = _read(platform.engine, cursors[-1])
        received.extend(page.operations)
        cursors.append(page.cursor)

    def while_the_slow_one_is_open(slow_session: Session) -> None:
        slow_id = slow_session.scalar(
            select(EventRow.event_id).where(EventRow.card_id == slow_card)
        )
        _place(platform, fast_card)
        with platform.engine.connect() as connection:
            fast_id = connection.scalar(
                select(EventRow.event_id).where(EventRow.card_id == fast_card)
            )
        assert slow_id is not None
        assert fast_id is not None
        assert fast_id > slow_id  # the higher id is committed and visible first
        poll()
        while_open.extend([list(received), cursors[-1]])

    with _PausedBeforeCommit(platform, while_the_slow_one_is_open) as slow:
        slow.orders.add(
            Order.accept(operation_id=f"op-{slow_card}", issuer_id=DEMO, card_id=slow_card, at=NOW),
            request={},
            fingerprint="f" * 64,
            sealed=None,
        )
        slow.commit()

    deadline = time.monotonic() + PATIENCE
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        poll()
    assert [o["cardId"] for o in received] == [slow_card, fast_card]  # none skipped or repeated
    assert while_open == [[], cursors[0]]  # the cursor did not move past the open transaction
    assert _read(platform.engine, cursors[-1]).operations == []


def test_a_card_keeps_its_order_when_an_older_transaction_writes_it_last(
    postgresql_platform: Platform,
) -> None:
    """A transaction that took its id early but changed the card after a younger one did."""
    platform, card_id = postgresql_platform, new_card_id()
    _place(platform, card_id)
    with platform.uow() as older:
        older.session.execute(select(func.pg_current_xact_id()))  # takes its id now
        _move(platform, card_id, ProductionStatus.DATA_PREPARED)  # a younger one, committed
        order = older.orders.active_for_card(DEMO, card_id)
        assert order is not None
        order.move_to(ProductionStatus.CARD_PROD_READY, at=NOW)
        older.commit()

    page = _read_until(platform.engine, 3)
    assert [(o["sequence"], o["details"]["status"]) for o in page.operations] == [
        (1, "CARD_PROD_REQUESTED"),
        (2, "DATA_PREPARED"),
        (3, "CARD_PROD_READY"),
    ]
