"""Engines for SQLite (the embedded default) and PostgreSQL (for several processes at scale)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT = 30_000  # milliseconds a writer waits for the lock before failing
PG_CONNECT_TIMEOUT = 5  # seconds to open a PostgreSQL connection
PG_POOL_TIMEOUT = 10  # seconds a request waits for a pooled connection before a 503
SQLITE_BEGIN = "sqlite_begin"  # execution option: "DEFERRED" for read-only transactions


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build the engine for `url`, with the pragmas SQLite needs to behave under concurrency.

    SQLite runs in WAL mode (readers never block the writer) with foreign keys on, and every
    transaction starts with `BEGIN IMMEDIATE` so that two writers serialise at the start instead
    of deadlocking on a lock upgrade half-way through. Read-only units of work ask for a DEFERRED
    transaction instead, so reads never wait for writers.
    """
    parsed = make_url(url)
    # A request may hold two connections at once (its unit of work, and the sandbox clock's
    # read): the pool must outgrow the server's 40 threads, or every request can end up waiting
    # for a second connection that only another waiting request could give back. Overflow
    # connections close when returned, so only `pool_size` stay open: 20, not fewer, since at
    # 16 concurrent status reads a pool of 5 opened and closed a PostgreSQL connection (a new
    # server process) for most reads, and served 442 reads/s against 487 (bench/status.py).
    if parsed.database not in (None, "", ":memory:"):  # a memory database has one connection
        kwargs = {"pool_size": 20, "max_overflow": 45, **kwargs}
    if parsed.get_backend_name() != "sqlite":
        # A connection the server dropped (a restart, a failover) is noticed and replaced before
        # use, so the API recovers by itself; an unreachable server fails a request within
        # seconds (503 DATABASE_UNAVAILABLE) instead of holding it.
        kwargs = {"connect_args": {"connect_timeout": PG_CONNECT_TIMEOUT}, **kwargs}
        return create_engine(url, pool_pre_ping=True, pool_timeout=PG_POOL_TIMEOUT, **kwargs)
    if parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)

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
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
