"""Where a group of single-card orders commits when an event loop leads it (services/
grouped_ordering.py `OnLoop`): on the loop itself, not on a committer thread.

A committer thread shares the interpreter lock with the loop that serves the requests, and
each hand-off wakes a thread on the other core: at saturation, 4 context switches per order on
the committer and about a quarter of the server's CPU per order (bench/RESULTS.md).

- SQLite works in process: the group commits synchronously, in one go, if the database is free
  at once (`SqlBulkIntake(wait=False)`). When another writer holds it (a file import, the
  in-server delivery or simulator threads, another process), the group is `Busy` and goes to
  the committer thread, which waits for the lock: the loop never does.
- PostgreSQL waits on the network: the same code runs inside SQLAlchemy's `greenlet_spawn`
  over psycopg's async connections (db/engine.py `make_async_engine`), so the loop serves other
  requests while the database works, as the delivery worker's claims do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.util import greenlet_spawn

from issuance.db.bulk import PlannerStatistics, SqlBulkIntake
from issuance.db.engine import make_async_engine
from issuance.services.grouped_ordering import Commit, OnLoop
from issuance.services.ordering import Clock

T = TypeVar("T")

# PostgreSQL connections of a loop's intake: one group commits at a time, on one of them. The
# second was the ANALYZE's (db/bulk.py `PlannerStatistics`), which has its own thread now: spare.
CONNECTIONS = 2
APPLICATION_NAME = "issuance-intake"  # as pg_stat_activity shows them


class SqliteOnLoop:
    """A group committed synchronously on the loop, or handed back as `Busy`."""

    def __init__(self, engine: Engine) -> None:
        self._bulk = partial(SqlBulkIntake, engine, wait=False)

    async def run(self, commit: Commit[T], clock: Clock) -> T:
        return commit(self._bulk, clock())  # the sandbox clock's read is in process too


class PostgresOnLoop:
    """A group committed over async connections: the loop runs on while the database works."""

    def __init__(
        self, engine: Engine, statistics: PlannerStatistics | None, *, clock_blocks: bool
    ) -> None:
        self._bulk = partial(SqlBulkIntake, engine, statistics)
        self._clock_blocks = clock_blocks

    async def run(self, commit: Commit[T], clock: Clock) -> T:
        now = await asyncio.to_thread(clock) if self._clock_blocks else clock()
        return await greenlet_spawn(commit, self._bulk, now)


@asynccontextmanager
async def intake_on_loop(
    engine: Engine, statistics: PlannerStatistics | None = None, *, clock_blocks: bool = False
) -> AsyncIterator[OnLoop]:
    """The running loop's `OnLoop` for `engine`, its connections closed at the end.

    `clock_blocks`: the platform's clock reads the database over blocking connections (the
    sandbox clock): on PostgreSQL it is read on a thread, once per group.
    """
    if engine.dialect.name != "postgresql":
        yield SqliteOnLoop(engine)
        return
    on_loop = make_async_engine(
        engine.url.render_as_string(hide_password=False),
        connections=CONNECTIONS,
        application_name=APPLICATION_NAME,
    )
    try:
        yield PostgresOnLoop(on_loop.sync_engine, statistics, clock_blocks=clock_blocks)
    finally:
        await on_loop.dispose()
