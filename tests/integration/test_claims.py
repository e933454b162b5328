"""Claims take the longest-due deliveries, and find them without reading the whole backlog.

A claim used to check every due delivery and sort them all before keeping its limit: 23 ms per
claim of 256 on SQLite and 50-120 ms on PostgreSQL with 20,000 due, growing with the backlog.
These tests pin the order a claim takes and the shape of its plan (an index walked in claim
order, no sort), on both databases.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from issuance.db.outbox import WALK_IN_ORDER, claim
from issuance.platform import Platform
from tests.outbox import NOW, Row, due_at, statements, write

LEASE = timedelta(minutes=5)


def seed(engine: Engine, due_at: list[datetime]) -> list[int]:
    """One card with one event per moment, its delivery due then; the delivery ids, in order."""
    return write(engine, [Row(f"claim-{n:05d}", 1, at) for n, at in enumerate(due_at)])


def take(engine: Engine, limit: int, worker: str = "w1") -> list[int]:
    claims = claim(engine, worker_id=worker, now=NOW, lease=LEASE, limit=limit)
    return [c.delivery_id for c in claims]


def test_a_claim_takes_the_longest_due_first_and_leaves_what_is_not_due(
    platform: Platform,
) -> None:
    minute = timedelta(minutes=1)
    # written in this order; due in another, and the fourth not due yet
    due = [NOW, NOW - minute, NOW - 10 * minute, NOW + minute, NOW - 3 * minute]
    ids = seed(platform.engine, due)

    first = take(platform.engine, 2)
    second = take(platform.engine, 10)

    assert first == sorted([ids[2], ids[4]])  # 10 and 3 minutes overdue
    assert second == sorted([ids[1], ids[0]])
    assert take(platform.engine, 10) == []  # the rest is not due, and the taken are leased


def test_a_claim_walks_the_due_index_in_order_instead_of_sorting_the_backlog(
    platform: Platform,
) -> None:
    """The plan of the very UPDATE a claim sends: no sort step, so the scan stops at the limit."""
    engine = platform.engine
    seed(engine, [NOW - timedelta(seconds=n) for n in range(5000)])
    if engine.dialect.name == "postgresql":  # with statistics it would rather sort: see outbox
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE deliveries")
    with statements(engine) as sent:
        assert len(take(engine, 50)) == 50
    update, parameters, _ = next(s for s in sent if s.sql.lstrip().startswith("UPDATE"))

    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            assert [s.sql for s in sent].index(WALK_IN_ORDER) < [s.sql for s in sent].index(update)
            connection.exec_driver_sql(WALK_IN_ORDER)
            plan = [row[0] for row in connection.exec_driver_sql(f"EXPLAIN {update}", parameters)]
            assert not [line for line in plan if "Sort" in line], plan
            assert any("ix_deliveries_due" in line for line in plan), plan
        else:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {update}", parameters)
            plan = [row[-1] for row in rows]
            assert not [line for line in plan if "TEMP B-TREE" in line], plan
            assert any("ix_deliveries_due" in line for line in plan), plan


def test_claimed_deliveries_are_due_again_when_their_lease_ends(platform: Platform) -> None:
    """A claim moves what it takes out of the due walk until its lease ends, so claims do not
    step over the deliveries in flight; one whose worker died is taken again then."""
    engine = platform.engine
    ids = seed(engine, [NOW - timedelta(minutes=3), NOW - timedelta(minutes=2), NOW])
    assert take(engine, 2) == ids[:2]

    assert due_at(engine, ids) == [NOW + LEASE, NOW + LEASE, NOW]
    second = timedelta(seconds=1)
    assert take_at(engine, NOW + LEASE - second, "w2") == [ids[2]]
    assert take_at(engine, NOW + LEASE + second, "w2") == ids[:2]


def take_at(engine: Engine, at: datetime, worker: str) -> list[int]:
    return [c.delivery_id for c in claim(engine, worker_id=worker, now=at, lease=LEASE, limit=10)]
