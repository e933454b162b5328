"""A database that cannot serve is 503 DATABASE_UNAVAILABLE with Retry-After, never a 500; a bug
in our SQL stays a 500. (The real outage, a PostgreSQL restart under load, is in
tests/reliability/test_database_restart.py.)"""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from issuance.api.errors import database_unavailable, install_error_handlers

REFUSED = OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))
LOCKED = OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))
NO_TABLE = OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: orderz"))
DUPLICATE = IntegrityError("INSERT", {}, psycopg.IntegrityError("duplicate key"))


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (REFUSED, True),
        (LOCKED, True),
        (PoolTimeout("QueuePool limit reached"), True),
        (NO_TABLE, False),
        (DUPLICATE, False),
        (ValueError("not a database error"), False),
    ],
)
def test_what_counts_as_the_database_being_unavailable(error: Exception, unavailable: bool) -> None:
    assert database_unavailable(error) is unavailable


def _answer_when_raising(error: Exception) -> httpx.Response:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise error

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/boom")

    return asyncio.run(call())


@pytest.mark.parametrize("error", [REFUSED, PoolTimeout("QueuePool limit reached")])
def test_an_unreachable_database_is_a_503_with_a_code_and_retry_after(error: Exception) -> None:
    answer = _answer_when_raising(error)
    assert answer.status_code == 503
    assert answer.json()["errorCode"] == "DATABASE_UNAVAILABLE"
    assert int(answer.headers["Retry-After"]) > 0
    assert "connection refused" not in answer.text  # the driver's words stay in the log


def test_a_broken_query_stays_a_500() -> None:
    answer = _answer_when_raising(NO_TABLE)
    assert answer.status_code == 500
    assert answer.json()["errorCode"] == "INTERNAL_ERROR"
