"""Engines for SQLite (the embedded default) and PostgreSQL (for several processes at scale)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import orjson
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from issuance.settings import REQUEST_THREADS

SQLITE_BUSY_TIMEOUT = 30_000  # milliseconds a writer waits for the lock before failing
PG_CONNECT_TIMEOUT = 5  # seconds to open a PostgreSQL connection
PG_POOL_TIMEOUT = 10  # seconds a request waits for a pooled connection before a 503
PING_IDLE_SECONDS = 1.0  # a pooled PostgreSQL connection idle this long is pinged before use
POOL_SIZE = 20  # PostgreSQL connections a process keeps open (see make_engine)
POOL_SPARE = 5  # connections beyond one per thread, for the server's own threads
SQLITE_BEGIN = "sqlite_begin"  # execution option: "DEFERRED" for read-only transactions
# Execution option: a writer that finds the database locked fails at once (`database is locked`)
# instead of waiting up to SQLITE_BUSY_TIMEOUT: for work on an event loop, which must not wait.
SQLITE_NOWAIT = "sqlite_nowait"


def json_text(value: Any) -> str:
    """JSON columns' text: orjson, a tenth of the time of `json.dumps` for an order's request.

    Compact and in UTF-8 where `json.dumps` escaped non-ASCII: other bytes, the same values
    read back. Non-text keys become text, as `json.dumps` makes them; integers beyond 64 bits,
    which orjson refuses, are written by `json.dumps`. NaN and infinities become null, where
    `json.dumps` wrote tokens that are not JSON (PostgreSQL refuses them).
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


_JSON = {"json_serializer": json_text, "json_deserializer": orjson.loads}


def make_engine(url: str, *, threads: int = REQUEST_THREADS, **kwargs: Any) -> Engine:
    """Build the engine for `url`, with the pragmas SQLite needs to behave under concurrency.

    SQLite runs in WAL mode (readers never block the writer) with foreign keys on, and every
    transaction starts with `BEGIN IMMEDIATE` so that two writers serialise at the start instead
    of deadlocking on a lock upgrade half-way through. Read-only units of work ask for a DEFERRED
    transaction instead, so reads never wait for writers. `threads`: how many threads of the
    process may use the engine at once (`Settings.request_threads`); the pool outgrows them.
    """
    parsed = make_url(url)
    # A request may hold two connections at once (its unit of work, and the sandbox clock's
    # read): the pool must outgrow the server's threads, or every request can end up waiting
    # for a second connection that only another waiting request could give back. Overflow
    # connections close when returned, so only `pool_size` stay open: 20, not fewer, since at
    # 16 concurrent status reads a pool of 5 opened and closed a PostgreSQL connection (a new
    # server process) for most reads, and served 442 reads/s against 487 (bench/status.py).
    if parsed.database not in (None, "", ":memory:"):  # a memory database has one connection
        overflow = max(0, threads + POOL_SPARE - POOL_SIZE)
        kwargs = {"pool_size": POOL_SIZE, "max_overflow": overflow, **kwargs}
    if parsed.get_backend_name() != "sqlite":
        # A connection the server dropped (a restart, a failover) is noticed and replaced
        # (`_ping_when_idle`), so the API recovers by itself; an unreachable server fails a
        # request within seconds (503 DATABASE_UNAVAILABLE) instead of holding it.
        kwargs = {"connect_args": {"connect_timeout": PG_CONNECT_TIMEOUT}, **kwargs}
        engine = create_engine(url, pool_timeout=PG_POOL_TIMEOUT, **_JSON, **kwargs)
        _ping_when_idle(engine)
        _bind_lists_in_binary(engine)
        return engine
    if parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, **_JSON, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # A purged card's sealed data is overwritten with zeros in the file, not left in a
        # free page until it happens to be reused.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        begin = f"BEGIN {options.get(SQLITE_BEGIN, 'IMMEDIATE')}"
        if not options.get(SQLITE_NOWAIT):
            connection.exec_driver_sql(begin)
            return
        connection.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            connection.exec_driver_sql(begin)
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT}")

    return engine


def make_async_engine(
    url: str, *, connections: int = 2, application_name: str | None = None
) -> AsyncEngine:
    """An asyncio engine on PostgreSQL with the settings of `make_engine`, for work on an event loop.

    Its `sync_engine` runs the same Core and ORM code as any engine, inside
    `sqlalchemy.util.greenlet_spawn`, over psycopg's async connections: the delivery worker claims
    and settles this way, so its event loop never shares the GIL with a database thread.
    """
    engine = create_async_engine(
        url,
        pool_size=connections,
        max_overflow=0,
        pool_timeout=PG_POOL_TIMEOUT,
        connect_args={
            "connect_timeout": PG_CONNECT_TIMEOUT,
            **({"application_name": application_name} if application_name else {}),
        },
        **_JSON,
    )
    _ping_when_idle(engine.sync_engine)
    _bind_lists_in_binary(engine.sync_engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only if it sat idle for `PING_IDLE_SECONDS`.

    `pool_pre_ping` pings on every checkout: a round trip and about 5% of a status read's CPU.
    A connection returned moments ago is not pinged; one that failed in use (the server
    restarted under load) invalidates the whole pool, so the next checkouts reconnect anyway.
    A failed ping raises `DisconnectionError`: the pool drops that connection and tries another.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < PING_IDLE_SECONDS:
            return  # just opened, or just used
        try:
            engine.dialect.do_ping(dbapi_connection)  # in autocommit: no transaction left open
        except Exception as error:  # psycopg.OperationalError, whatever the cause
            raise DisconnectionError(str(error)) from error


_RETURNED_AT = "issuance_returned_at"


def _bind_lists_in_binary(engine: Engine) -> None:
    """Lists (the arrays of db/arrays.py) go to the server in binary: psycopg's text format
    quotes each element with a regular expression, ~8x the CPU (11.6 against 1.5 µs per settled
    delivery, in process)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # psycopg's, or the one under SQLAlchemy's asyncio adapter; other drivers: as is
        driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        adapters = getattr(driver, "adapters", None)
        if adapters is not None:
            adapters.register_dumper(list, ListBinaryDumper)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
