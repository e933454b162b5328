"""The ceilings of bench/intake.py and bench/status.py: a bare FastAPI + uvicorn order endpoint, nothing else.

    .venv/bin/python bench/bare_intake_app.py PORT SQLITE_PATH [PROCESSES]

Same server stack as `issuance serve` (uvicorn with its defaults, a sync FastAPI route run in the
thread pool), same JWE decryption (joserfc, ECDH-ES + A256GCM, an EC P-256 key made at start-up
and published at /.well-known/jwks.json) and one SQLite insert committed per order (WAL,
synchronous=NORMAL, like the platform). No authentication, validation, idempotency, events or
audit: what is left is what any order endpoint on this stack must pay. With PROCESSES > 1,
uvicorn workers like `issuance serve --workers`, sharing one key (a file beside the database).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import uuid
from typing import Annotated, Any

import uvicorn
from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse
from joserfc import jwe
from joserfc.jwk import ECKey, KeySet

KEY_FILE = os.environ.get("BARE_KEY_FILE")
KEY = (
    ECKey.import_key(json.loads(open(KEY_FILE).read()))  # noqa: SIM115
    if KEY_FILE
    else ECKey.generate_key("P-256", parameters={"kid": "bare-1", "use": "enc"})
)
KEYS = KeySet([KEY])
DATABASE = os.environ.get("BARE_DATABASE") or (sys.argv[2] if len(sys.argv) > 2 else "")
ALGORITHMS = ["ECDH-ES", "A256GCM"]
app = FastAPI()
local = threading.local()


def connection() -> sqlite3.Connection:
    if not hasattr(local, "db"):
        local.db = sqlite3.connect(DATABASE, isolation_level=None, check_same_thread=False)
        local.db.execute("PRAGMA journal_mode=WAL")
        local.db.execute("PRAGMA synchronous=NORMAL")
        local.db.execute("PRAGMA busy_timeout=30000")
    return local.db


@app.get("/.well-known/jwks.json")
def jwks() -> dict[str, Any]:
    return {"keys": [KEY.as_dict(private=False)]}


@app.post("/banking/v1/issuers/{issuer_id}/physicalCards/{card_id}/operations:production")
def order(issuer_id: str, card_id: str, body: Annotated[dict[str, Any], Body()]) -> JSONResponse:
    """Decrypt the card data, insert the order, answer 202: FastAPI runs it in its thread pool."""
    card = json.loads(
        jwe.decrypt_compact(body["encryptedData"], KEYS, algorithms=ALGORITHMS).plaintext
    )
    operation_id = uuid.uuid4().hex
    db = connection()
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "INSERT INTO orders (operation_id, issuer_id, card_id, request, pan_last4) "
        "VALUES (?, ?, ?, ?, ?)",
        (operation_id, issuer_id, card_id, json.dumps(body), card["pan"][-4:]),
    )
    db.execute("COMMIT")
    return JSONResponse({"operationId": operation_id}, status_code=202)


@app.get("/banking/v1/issuers/{issuer_id}/physicalCards/{card_id}/productionStatus")
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
    if row is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse({"operations": [{"operationId": row[0], "request": json.loads(row[1])}]})


def main() -> None:
    setup = sqlite3.connect(sys.argv[2])
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute(
        "CREATE TABLE IF NOT EXISTS orders (operation_id TEXT PRIMARY KEY, issuer_id TEXT, "
        "card_id TEXT, request TEXT, pan_last4 TEXT, UNIQUE (issuer_id, card_id))"
    )
    setup.close()
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
