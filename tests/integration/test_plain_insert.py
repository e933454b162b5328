"""SQLite's bulk inserts bypass SQLAlchemy's per-row handling (db/bulk_rows.py `_PlainInsert`):
what they store must be what SQLAlchemy's own insert stores, value for value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert

from issuance.db.bulk_rows import ORDERS, insert_rows
from issuance.platform import Platform
from tests.factories import DEMO

AT = datetime(2026, 12, 5, 14, 3, 7, 120, tzinfo=UTC)


def _order_row(operation_id: str) -> dict[str, Any]:
    return {
        "operation_id": operation_id,
        "issuer_id": DEMO,
        "card_id": f"card-{operation_id}",
        "active_card_id": f"card-{operation_id}",
        "issuer_request_id": f"req-{operation_id}",
        "request_fingerprint": "f" * 64,
        "consumer_id": None,
        "status": "PENDING",
        "production_status": "CARD_PROD_REQUESTED",
        "start_time": AT,
        "end_time": None,
        "due_date": datetime(2026, 12, 8, 16, 0, tzinfo=UTC),
        "hold": "NONE",
        "materials": ["BODY-DEBIT-BLUE", "LETTER-WELCOME"],
        "shipment": None,
        "request": {"shipment": {"deliveryAddress": {"firstName": "Zoë", "city": "Kraków"}}},
        "sensitive_data": b"\x00sealed\xff",
        "updated_at": AT,
        "version": 1,
    }


def _stored(platform: Platform, operation_id: str) -> dict[str, Any]:
    """The row as SQLite holds it: text, numbers and bytes, before any type reads it back."""
    with platform.engine.connect() as connection:
        cursor = connection.exec_driver_sql(
            "SELECT * FROM orders WHERE operation_id = ?", (operation_id,)
        )
        names = [column[0] for column in cursor.cursor.description]
        row = dict(zip(names, cursor.one(), strict=True))
    for key in ("operation_id", "card_id", "active_card_id", "issuer_request_id"):
        row.pop(key)
    return row


def test_the_plain_insert_stores_what_sqlalchemys_insert_stores(platform: Platform) -> None:
    if platform.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL inserts unnested arrays (db/bulk_rows.py `_Unnested`)")
    with platform.engine.begin() as connection:
        connection.execute(insert(ORDERS), [_order_row("by-sqlalchemy")])
        insert_rows(connection, ORDERS, [_order_row("plain-1"), _order_row("plain-2")])

    by_sqlalchemy = _stored(platform, "by-sqlalchemy")
    assert by_sqlalchemy["start_time"] == "2026-12-05 14:03:07.000120"
    assert _stored(platform, "plain-1") == by_sqlalchemy
    assert _stored(platform, "plain-2") == by_sqlalchemy


def test_rows_must_give_the_columns_sqlalchemy_would_default(platform: Platform) -> None:
    if platform.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL inserts unnested arrays (db/bulk_rows.py `_Unnested`)")
    row = _order_row("no-hold")
    del row["hold"]

    with platform.engine.begin() as connection, pytest.raises(ValueError, match="hold"):
        insert_rows(connection, ORDERS, [row])
