"""Parking moves what no claim may take out of the claims' way, and never past when it could go.

A card's later event waits for the earlier one's next try; a disabled endpoint's deliveries wait
an hour at a time; a replay or enabling the endpoint makes them due at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from issuance.db import parking
from issuance.db.endpoint_health import disable
from issuance.db.models import DeliveryRow
from issuance.db.outbox import claim, enable_endpoint, replay
from issuance.db.parking import DISABLED_FOR, park_waiting
from issuance.delivery import worker as delivery_worker
from issuance.delivery.worker import DeliveryWorker
from issuance.platform import Platform
from tests.factories import DEMO
from tests.outbox import NOW, Row, due_at, write

MINUTE = timedelta(minutes=1)
LATER = NOW + 30 * MINUTE  # when the front events are tried again


def claimable(engine: Engine, at: datetime = NOW) -> list[int]:
    return [
        c.delivery_id for c in claim(engine, worker_id="w1", now=at, lease=5 * MINUTE, limit=100)
    ]


def test_a_cards_later_events_wait_for_its_front_events_next_try(platform: Platform) -> None:
    engine = platform.engine
    front, second, third, free = write(
        engine,
        [
            Row("card-a", 1, LATER),  # retried later
            Row("card-a", 2, NOW - 5 * MINUTE),
            Row("card-a", 3, NOW - MINUTE),
            Row("card-b", 1, NOW - MINUTE),
        ],
    )

    assert park_waiting(engine, now=NOW) == 2

    assert due_at(engine, [front, second, third, free]) == [LATER, LATER, LATER, NOW - MINUTE]
    assert claimable(engine) == [free]
    assert park_waiting(engine, now=NOW) == 0  # nothing left in the way


def test_nothing_waits_behind_an_event_in_flight_or_on_an_unordered_endpoint(
    platform: Platform,
) -> None:
    engine = platform.engine
    _, behind_it, _, unordered = write(
        engine,
        [
            Row("card-a", 1, NOW - MINUTE, claimed_until=NOW + MINUTE),  # may be answered now
            Row("card-a", 2, NOW - MINUTE),
            Row("card-b", 1, LATER, endpoint="loose"),
            Row("card-b", 2, NOW - MINUTE, endpoint="loose"),
        ],
    )

    assert park_waiting(engine, now=NOW, unordered=frozenset({(DEMO, "loose")})) == 0
    assert due_at(engine, [behind_it, unordered]) == [NOW - MINUTE, NOW - MINUTE]


def test_a_disabled_endpoint_waits_an_hour_at_a_time_and_goes_at_once_when_enabled(
    platform: Platform,
) -> None:
    engine = platform.engine
    first, second = write(engine, [Row("card-a", 1, NOW), Row("card-b", 1, NOW - MINUTE)])
    _disable(platform, "main")

    assert park_waiting(engine, now=NOW) == 2
    assert due_at(engine, [first, second]) == [NOW + DISABLED_FOR] * 2

    assert enable_endpoint(engine, issuer_id=DEMO, endpoint_id="main", at=NOW + MINUTE)
    assert due_at(engine, [first, second]) == [NOW + MINUTE] * 2
    assert sorted(claimable(engine, NOW + MINUTE)) == [first, second]


def test_a_replay_takes_the_cards_parked_events_along(platform: Platform) -> None:
    engine = platform.engine
    front, waiting = write(engine, [Row("card-a", 1, LATER), Row("card-a", 2, NOW)])
    park_waiting(engine, now=NOW)
    event_of_front = _event_id(engine, front)

    replay(engine, event_ids=[event_of_front], now=NOW + MINUTE)

    assert due_at(engine, [front, waiting]) == [NOW + MINUTE] * 2
    assert claimable(engine, NOW + MINUTE) == [front]  # the order still holds


def test_a_worker_parks_before_it_claims(platform: Platform) -> None:
    engine = platform.engine
    front, waiting = write(engine, [Row("card-a", 1, LATER), Row("card-a", 2, NOW)])

    worker = DeliveryWorker(platform, clock=lambda: NOW, identity="w1")
    assert worker.run_once() == 0

    assert due_at(engine, [front, waiting]) == [LATER, LATER]


def test_a_walk_looks_at_a_window_of_the_longest_due_and_the_worker_walks_on(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parking, "PARK_WINDOW", 4)
    monkeypatch.setattr(delivery_worker, "PARK_WINDOW", 4)
    engine = platform.engine
    rows = [Row(f"card-{n}", 1, LATER) for n in range(10)]
    rows += [Row(f"card-{n}", 2, NOW - (20 - n) * MINUTE) for n in range(10)]  # card-0 first
    waiting = write(engine, rows)[10:]

    assert park_waiting(engine, now=NOW) == 4
    assert due_at(engine, waiting)[:5] == [LATER] * 4 + [NOW - 16 * MINUTE]

    worker = DeliveryWorker(platform, clock=lambda: NOW, identity="w1")
    worker.run_once()  # a full window: the next claim walks again, not PARK_EVERY later
    worker.run_once()
    assert due_at(engine, waiting) == [LATER] * 10


def _disable(platform: Platform, endpoint: str) -> None:
    with Session(platform.engine) as session, session.begin():
        disable(session, DEMO, endpoint, at=NOW, reason="test")


def _event_id(engine: Engine, delivery_id: int) -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(
                select(DeliveryRow.event_id).where(DeliveryRow.delivery_id == delivery_id)
            )
            or 0
        )
