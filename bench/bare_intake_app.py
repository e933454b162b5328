"""The ceilings of bench/intake.py and bench/status.py: a bare FastAPI + uvicorn order endpoint, nothing else.

    .venv/bin/python bench/bare_intake_app.py PORT SQLITE_PATH [PROCESSES]
    BARE_STATUS_POSTGRESQL=CONNINFO .venv/bin/python bench/bare_intake_app.py PORT SQLITE_PATH
    BARE_INTAKE_POSTGRESQL=CONNINFO .venv/bin/python bench/bare_intake_app.py PORT SQLITE_PATH [PROCESSES]

The order route is `async`, as the platform's single-card route is: it decrypts on the event
loop and inserts there (SQLite: a WAL commit of tens of µs, cheaper than a thread hop; with
BARE_INTAKE_POSTGRESQL, one INSERT into a `bare_orders` table of that database, made afresh at
start-up, committed on its own through psycopg's async pool). A synchronous route here paid a
thread hop per order that the platform no longer pays: on PostgreSQL it served 933-1,071 orders/s
where this one serves 1,375-1,618 (2 pairs, the same hour), so it was the lower ceiling.

With BARE_STATUS_POSTGRESQL, the status read is one indexed SELECT of the platform's own orders
table in that PostgreSQL database, on the event loop through psycopg's async pool, as the
platform reads status there: the cheapest status read on PostgreSQL, where the SQLite ceiling
makes no round trip at all.

Same server stack as `issuance serve` (uvicorn with its defaults, FastAPI), same JWE decryption
(joserfc, ECDH-ES + A256GCM, an EC P-256 key made at start-up and published at
/.well-known/jwks.json) and one insert committed per order (SQLite: WAL, synchronous=NORMAL, like
the platform). No authentication, validation, idempotency, events or audit: what is left is what
any order endpoint on this stack must pay. With PROCESSES > 1, uvicorn workers like `issuance
serve --workers`, sharing one key (a file beside the database).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import psycopg
import uvicorn
from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse
from joserfc import jwe
from joserfc.jwk import ECKey, KeySet
from psycopg_pool import AsyncConnectionPool

KEY_FILE = os.environ.get("BARE_KEY_FILE")
KEY = (
    ECKey.import_key(json.loads(open(KEY_FILE).read()))  # noqa: SIM115
    if KEY_FILE
    else ECKey.generate_key("P-256", parameters={"kid": "bare-1", "use": "enc"})
)
KEYS = KeySet([KEY])
DATABASE = os.environ.get("BARE_DATABASE") or (sys.argv[2] if len(sys.argv) > 2 else "")
STATUS_POSTGRESQL = os.environ.get("BARE_STATUS_POSTGRESQL")
INTAKE_POSTGRESQL = os.environ.get("BARE_INTAKE_POSTGRESQL")
ALGORITHMS = ["ECDH-ES", "A256GCM"]
local = threading.local()
reads = (
    AsyncConnectionPool(
        STATUS_POSTGRESQL, min_size=2, max_size=10, open=False, kwargs={"autocommit": True}
    )
    if STATUS_POSTGRESQL
    else None
)
writes = (
    AsyncConnectionPool(
        INTAKE_POSTGRESQL, min_size=8, max_size=64, open=False, kwargs={"autocommit": True}
    )
    if INTAKE_POSTGRESQL
    else None
)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    pools = [pool for pool in (reads, writes) if pool is not None]
    for pool in pools:
        await pool.open()
    yield
    for pool in pools:
        await pool.close()


app = FastAPI(lifespan=lifespan)


def connection() -> sqlite3.Connection:
    if not hasattr(local, "db"):
        local.db = sqlite3.connect(DATABASE, isolation_level=None, check_same_thread=False)
        local.db.execute("PRAGMA journal_mode=WAL")
        local.db.execute("PRAGMA synchronous=NORMAL")
        local.db.execute("PRAGMA busy_timeout=30000")
    db: sqlite3.Connection = local.db
    return db


ORDERS_TABLE = (
    "TABLE {} (operation_id TEXT PRIMARY KEY, issuer_id TEXT, card_id TEXT, request TEXT, "
    "pan_last4 TEXT, UNIQUE (issuer_id, card_id))"
)


def insert_order(db: sqlite3.Connection, row: tuple[str, ...]) -> None:
    """The ceiling's one insert, committed (bench/intake_stages.py times it alone)."""
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "INSERT INTO orders (operation_id, issuer_id, card_id, request, pan_last4) "
        "VALUES (?, ?, ?, ?, ?)",
        row,
    )
    db.execute("COMMIT")


@app.get("/.well-known/jwks.json")
def jwks() -> dict[str, Any]:
    return {"keys": [KEY.as_dict(private=False)]}


@app.post("/banking/v1/issuers/{issuer_id}/physicalCards/{card_id}/operations:production")
async def order(
    issuer_id: str, card_id: str, body: Annotated[dict[str, Any], Body()]
) -> JSONResponse:
    """Decrypt the card data, insert the order, answer 202, all on the event loop."""
    card = json.loads(
        jwe.decrypt_compact(body["encryptedData"], KEYS, algorithms=ALGORITHMS).plaintext or b""
    )
    operation_id = uuid.uuid4().hex
    row = (operation_id, issuer_id, card_id, json.dumps(body), card["pan"][-4:])
    if writes is not None:
        async with writes.connection() as pg:
            await pg.execute(
                "INSERT INTO bare_orders (operation_id, issuer_id, card_id, request, pan_last4) "
                "VALUES (%s, %s, %s, %s, %s)",
                row,
                prepare=True,
            )
        return JSONResponse({"operationId": operation_id}, status_code=202)
    insert_order(connection(), row)  # a WAL commit takes tens of µs: cheaper than a thread hop
    return JSONResponse({"operationId": operation_id}, status_code=202)


STATUS = "/banking/v1/issuers/{issuer_id}/physicalCards/{card_id}/productionStatus"


def _answer(row: Any) -> JSONResponse:
    if row is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    request = row[1] if isinstance(row[1], dict) else json.loads(row[1])
    return JSONResponse({"operations": [{"operationId": row[0], "request": request}]})


if reads is None:

    @app.get(STATUS)
    def status(issuer_id: str, card_id: str) -> JSONResponse:
        """The ceiling of bench/status.py: one indexed SELECT of the card's order."""
        row = (
            connection()
            .execute(
                "SELECT operation_id, request FROM orders WHERE issuer_id = ? AND card_id = ?",
                (issuer_id, card_id),
            )
            .fetchone()
        )
        return _answer(row)

else:

    @app.get(STATUS)
    async def status_on_postgresql(issuer_id: str, card_id: str) -> JSONResponse:
        """The same read from the platform's orders table, on the event loop."""
        assert reads is not None  # this route exists only then
        async with reads.connection() as db:
            cursor = await db.execute(
                "SELECT operation_id, request FROM orders WHERE issuer_id = %s AND card_id = %s",
                (issuer_id, card_id),
                prepare=True,
            )
            row = await cursor.fetchone()
        return _answer(row)


def main() -> None:
    setup = sqlite3.connect(sys.argv[2])
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE " + ORDERS_TABLE.format("IF NOT EXISTS orders"))
    setup.close()
    if INTAKE_POSTGRESQL:
        with psycopg.connect(INTAKE_POSTGRESQL, autocommit=True) as fresh:
            fresh.execute("DROP TABLE IF EXISTS bare_orders")
            fresh.execute("CREATE " + ORDERS_TABLE.format("bare_orders"))
    processes = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if processes == 1:
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
        return
    key_file = f"{sys.argv[2]}.key.json"
    with open(key_file, "w") as out:
        out.write(json.dumps(KEY.as_dict(private=True)))
    os.environ.update(BARE_KEY_FILE=key_file, BARE_DATABASE=sys.argv[2])
    uvicorn.run(
        "bare_intake_app:app",
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=processes,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
