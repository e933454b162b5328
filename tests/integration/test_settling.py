"""A group of settlements is written by a fixed number of statements, whatever its size.

The worker settles hundreds of deliveries at once. On PostgreSQL an executemany of one UPDATE per
delivery cost ~55 µs of the worker's CPU per delivery (a pipeline round trip each), so the group
is one UPDATE and one INSERT over arrays (`unnest`), bound in binary. These tests pin that shape
and that every delivery still gets its own outcome, on both databases.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from psycopg.adapt import PyFormat
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import select

from issuance.db.models import DeliveryAttemptRow, DeliveryRow
from issuance.db.outbox import Claim, DeliveryStatus, Settlement, claim, settle
from issuance.domain.retry import Decision, Outcome, Verdict
from issuance.platform import Platform
from tests.outbox import NOW, Row, statements, utc, write

LEASE = timedelta(minutes=5)
LATER = NOW + timedelta(minutes=10)


def outcome_of(number: int, item: Claim) -> Settlement:
    """Every third delivered, every third retried after a 503, the rest failed to connect."""
    attempted = NOW + timedelta(milliseconds=number)
    if number % 3 == 0:
        return Settlement(item, Outcome(status_code=204), Decision(Verdict.DELIVERED), attempted, 4)
    if number % 3 == 1:
        retry = Decision(Verdict.RETRY, LATER + timedelta(seconds=number))
        return Settlement(item, Outcome(status_code=503), retry, attempted, 7.5)
    lost = Outcome(error=f"ConnectError: refused #{number}")
    return Settlement(item, lost, Decision(Verdict.RETRY, LATER), attempted, 0.0)


def test_a_group_is_settled_in_one_statement_each_row_with_its_own_outcome(
    platform: Platform,
) -> None:
    engine = platform.engine
    write(engine, [Row(f"settle-{n:03d}", 1, NOW) for n in range(90)])
    taken = claim(engine, worker_id="w1", now=NOW, lease=LEASE, limit=100)
    settlements = [outcome_of(n, item) for n, item in enumerate(taken)]

    with statements(engine) as sent:
        settle(engine, settlements, worker_id="w1")

    updates = [s.many for s in sent if "UPDATE deliveries " in s.sql]
    inserts = [s.many for s in sent if "INSERT INTO delivery_attempts" in s.sql]
    if engine.dialect.name == "postgresql":  # one statement for 90 deliveries: the log is a CTE
        assert (updates, inserts) == ([False], [False])
        assert any("UPDATE deliveries " in s.sql and "INSERT INTO" in s.sql for s in sent)
    else:  # SQLite loops in C, in process: an executemany is as cheap as one statement
        assert (updates, inserts) == ([True], [True])

    with engine.connect() as connection:
        rows = {r.delivery_id: r for r in connection.execute(select(DeliveryRow))}
        logged = {
            r.delivery_id: r
            for r in connection.execute(select(DeliveryAttemptRow))  # one attempt each
        }
    assert len(rows) == len(logged) == 90
    for item in settlements:
        row, attempt = rows[item.claim.delivery_id], logged[item.claim.delivery_id]
        delivered = item.decision.verdict is Verdict.DELIVERED
        assert row.status == (DeliveryStatus.DELIVERED if delivered else DeliveryStatus.PENDING)
        assert (row.attempts, row.claimed_by, row.claimed_until) == (1, None, None)
        assert (row.last_status_code, row.last_error) == (
            item.outcome.status_code,
            item.outcome.error,
        )
        assert utc(row.first_attempt_at) == item.attempted_at
        assert utc(row.delivered_at) == (item.attempted_at if delivered else None)
        assert utc(row.next_attempt_at) == (item.decision.next_attempt_at or item.attempted_at)
        assert (attempt.status_code, attempt.error, attempt.latency_ms) == (
            item.outcome.status_code,
            item.outcome.error,
            item.latency_ms,
        )
        assert utc(attempt.attempted_at) == item.attempted_at


def test_postgresql_connections_bind_lists_in_binary(platform: Platform) -> None:
    """The arrays a settlement unnests: psycopg's text format costs ~8x the CPU to write."""
    engine = platform.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL driver setting")
    with engine.connect() as connection:
        adapters = connection.connection.dbapi_connection.adapters  # type: ignore[union-attr]
        assert issubclass(adapters.get_dumper(list, PyFormat.AUTO), ListBinaryDumper)
