"""Status reads: on PostgreSQL from the server's event loop (psycopg's async pool, no thread); on
SQLite in a request thread, one Core SELECT past the unit of work.

A status read is one indexed SELECT. Run in a request thread through an ORM session it cost 1.3
to 1.8 ms of the server's CPU per read at saturation; here, 0.72 to 0.8 ms, and p99 at 200
reads/s went from 7.5-8.5 ms to 4.2-4.5 ms (bench/status.py, a million orders, in turns in the
same hour). What went: the hand-off to a thread and back, the session and the pool's resets,
and the result metadata SQLAlchemy builds per execution. SQLite keeps the thread: its reads are
calls into the process that would stall the loop. There `for_card_blocking` skips the session:
227-242 against 151-153 µs of CPU per read (in process, 5,000 reads).

The statement and the row mapping are the repository's (`CARD_OPERATIONS`, `order_from_row`),
so both paths answer the same. Driver errors are raised as SQLAlchemy's, so the API's one
handler tells 503 DATABASE_UNAVAILABLE from a 500 for both paths.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import psycopg
import structlog
from psycopg import AsyncConnection
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SqlPoolTimeout

from issuance.db.engine import PG_CONNECT_TIMEOUT, PING_IDLE_SECONDS, SQLITE_BEGIN
from issuance.db.repositories import CARD_OPERATIONS, order_from_row
from issuance.domain.orders import Order

log = structlog.get_logger("issuance.status_reads")

MIN_CONNECTIONS = 2  # kept open per API process
MAX_CONNECTIONS = 10  # reads in flight at once per process; more wait for one (a read is ~1 ms)
APPLICATION_NAME = "issuance-status-reads"
_SQL = str(CARD_OPERATIONS.compile(dialect=postgresql.psycopg.dialect()))  # type: ignore[no-untyped-call]


def for_card_blocking(engine: Engine, issuer_id: str, card_id: str) -> list[tuple[Order, int]]:
    """`StatusReads.for_card` for a request thread (SQLite): a DEFERRED read transaction, so it
    never waits for a writer."""
    params = {"issuer_id": issuer_id, "card_id": card_id}
    with engine.connect().execution_options(**{SQLITE_BEGIN: "DEFERRED"}) as connection:
        rows = connection.execute(CARD_OPERATIONS, params).all()
    return [(order_from_row(row), row.sequence) for row in rows]


class StatusReads:
    """Every order of a card with its latest sequence, read on the event loop it is opened in."""

    def __init__(self, url: URL, *, timeout: float = PG_CONNECT_TIMEOUT) -> None:
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._returned_at: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self._checking: asyncio.Task[None] | None = None
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=MIN_CONNECTIONS,
            max_size=MAX_CONNECTIONS,
            open=False,
            # An unreachable server answers a read with a 503 within seconds, as the engine does.
            timeout=timeout,
            kwargs={
                "autocommit": True,  # one statement: no BEGIN, no ROLLBACK
                "row_factory": namedtuple_row,
                "connect_timeout": PG_CONNECT_TIMEOUT,
                "application_name": APPLICATION_NAME,  # as pg_stat_activity shows them
            },
            check=self._ping_if_idle,
            reset=self._returned,
            name="status-reads",
        )

    async def open(self) -> None:
        """Without waiting for the server: the API starts, and answers 503, while it is down."""
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def for_card(self, issuer_id: str, card_id: str) -> list[tuple[Order, int]]:
        """The card's orders, oldest first, each with its latest event sequence: as
        `SqlOrderRepository.for_card` reads them."""
        params = {"issuer_id": issuer_id, "card_id": card_id}
        try:
            async with self.pool.connection() as connection:
                cursor = await connection.execute(_SQL, params, prepare=True)
                rows = await cursor.fetchall()
        except PoolTimeout as error:
            raise SqlPoolTimeout(f"no status-read connection: {error}") from None
        except psycopg.Error as error:
            if isinstance(error, psycopg.OperationalError):
                self._check_soon()  # the server restarted: replace the other idle connections
            raise DBAPIError.instance(
                _SQL, params, error, psycopg.Error, hide_parameters=True
            ) from None
        return [(order_from_row(row), row.sequence) for row in rows]

    async def _returned(self, connection: AsyncConnection[Any]) -> None:
        self._returned_at[connection] = time.monotonic()

    async def _ping_if_idle(self, connection: AsyncConnection[Any]) -> None:
        """Ping a connection unused for `PING_IDLE_SECONDS` (or never used); one in steady use
        goes as it is. A failed ping raises: the pool drops that connection, hands out another.
        """
        returned_at = self._returned_at.get(connection)
        if returned_at is not None and time.monotonic() - returned_at < PING_IDLE_SECONDS:
            return
        await connection.execute("")

    def _check_soon(self) -> None:
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self._check())

    async def _check(self) -> None:
        """Replace the idle connections that no longer answer; the server may still be down."""
        try:
            await self.pool.check()
        except (psycopg.Error, PoolTimeout) as error:
            log.warning("status-read connections not checked", error_type=type(error).__name__)
