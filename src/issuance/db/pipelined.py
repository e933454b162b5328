"""PostgreSQL: several statements sent at once, and their rows read after one round trip.

A group of orders looks up its keys, its cards and its issuer before it writes. Sent one after
the other, each statement is a round trip, and on an event loop a wait behind the other
requests' work before the group goes on (bench/RESULTS.md, "Order intake"). Statements that do
not need each other's answers go together instead, through psycopg's pipeline mode, with the
transaction's BEGIN when they open it. Where libpq has no pipeline mode, they go one by one.

They go to the driver directly: SQLAlchemy's statement events and echo do not see them (nor do
tests that count statements through those events).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.util import await_only

Query = tuple[ClauseElement, Mapping[str, Any]]
Rows = list[tuple[Any, ...]]


def pipelined(connection: Connection, queries: Sequence[Query]) -> list[Rows]:
    """Each query's rows, in order; the queries run in the connection's transaction.

    The statements are compiled once per dialect (`ClauseElement`s built at import): their bound
    values must be plain (no expanding lists: use `= ANY` of an array).
    """
    compiled = []
    for statement, params in queries:
        sql, defaults = _compiled(statement, connection.dialect)
        compiled.append((sql, {**defaults, **params}))
    raw = connection.connection.driver_connection
    if not isinstance(raw, psycopg.Connection | psycopg.AsyncConnection):
        raise TypeError(f"pipelined statements need psycopg, not {type(raw).__name__}")
    try:
        if isinstance(raw, psycopg.AsyncConnection):  # on an event loop, in SQLAlchemy's greenlet
            rows: list[Rows] = await_only(_async_rows(raw, compiled))
            return rows
        return _rows(raw, compiled)
    except psycopg.Error as error:
        raise _wrapped(connection, raw, error, compiled) from error


def _wrapped(
    connection: Connection,
    raw: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
    error: psycopg.Error,
    compiled: Sequence[tuple[str, Mapping[str, Any]]],
) -> DBAPIError:
    """The driver's error as SQLAlchemy would have raised it from `execute` (a lost race, an
    unreachable database: what callers and the API's handlers look for), the connection
    invalidated if it is gone, so that the pool opens a new one."""
    gone = bool(raw.closed or raw.broken)
    if gone:
        connection.invalidate(error)
    wrapped = DBAPIError.instance(
        "; ".join(sql for sql, _ in compiled),
        None,  # parameters stay out of messages (card ids, keys)
        error,
        psycopg.Error,
        hide_parameters=True,
        connection_invalidated=gone,
        dialect=connection.dialect,
    )
    assert isinstance(wrapped, DBAPIError)
    return wrapped


@lru_cache(maxsize=64)
def _compiled(statement: ClauseElement, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """The statement's SQL, and the values it binds itself (its literals)."""
    compiled = statement.compile(dialect=dialect)
    return str(compiled), dict(compiled.params)


def _rows(
    raw: psycopg.Connection[Any], compiled: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[Rows]:
    cursors = [raw.cursor() for _ in compiled]
    with raw.pipeline() if psycopg.Pipeline.is_supported() else nullcontext():
        for cursor, (sql, params) in zip(cursors, compiled, strict=True):
            cursor.execute(sql, params)
    return [list(cursor.fetchall()) for cursor in cursors]


async def _async_rows(
    raw: psycopg.AsyncConnection[Any], compiled: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[Rows]:
    cursors = [raw.cursor() for _ in compiled]
    async with raw.pipeline() if psycopg.AsyncPipeline.is_supported() else nullcontext():
        for cursor, (sql, params) in zip(cursors, compiled, strict=True):
            await cursor.execute(sql, params)
    return [list(await cursor.fetchall()) for cursor in cursors]
