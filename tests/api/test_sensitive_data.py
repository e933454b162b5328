"""PAN, tracks and CSC never leave the JWE: not in responses, logs or the database."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from issuance.db.models import Base, OrderRow
from issuance.security.sealing import open_sealed
from issuance.services.intake import sealing_context
from tests.conftest import Server
from tests.factories import IssuerClient, luhn_pan, new_card_id, order_body


def _database_dump(server: Server) -> str:
    """Every row of every table, as text (binary columns included, as their repr)."""
    lines = []
    with server.platform.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            lines.extend(repr(tuple(row)) for row in connection.execute(select(table)))
    return "\n".join(lines)


def test_sensitive_values_appear_nowhere_but_sealed(
    http: httpx.Client, server: Server, capfd: pytest.CaptureFixture[str]
) -> None:
    issuer = IssuerClient(http)
    pan = luhn_pan("45399100")
    track1 = f"B{pan}^LOVELACE/ADA^2911201000000000000"
    track2 = f"{pan}=29112010000012345"
    card: dict[str, Any] = {
        "pan": pan,
        "cvv2": "987",
        "cvv1": "654",
        "pvv": "4321",
        "trackData": {"track1": track1, "track2": track2},
    }
    card_id = new_card_id()
    answers = [
        issuer.order(card_id, order_body(issuer.encrypt(**card))),
        issuer.order(new_card_id(), order_body(issuer.encrypt(**card)), dryRun="true"),
        issuer.order(
            new_card_id(), order_body(issuer.encrypt(**{**card, "exp": "2999"}))
        ),  # refused: exp
        issuer.order(
            new_card_id(), order_body(issuer.encrypt(**card), cardProductId="DEMO-CREDIT")
        ),  # refused: BIN
        issuer.order_batch(
            [{"cardId": new_card_id(), **order_body(issuer.encrypt(**card), consumerId="x y")}]
        ),
        issuer.status(card_id),
    ]
    assert [a.status_code for a in answers] == [202, 200, 400, 400, 202, 200]
    out, err = capfd.readouterr()
    places = {
        "responses": "\n".join(a.text + json.dumps(dict(a.headers)) for a in answers),
        "logs": out + err,
        "database": _database_dump(server),
    }
    assert "operations:production" in places["logs"]  # the logs were captured
    for place, text in places.items():
        for secret in (pan, track1, track2, pan[6:12]):
            assert secret not in text, f"a sensitive value reached the {place}"
        for key in ('"cvv2"', '"cvv1"', '"pvv"', '"trackData"', "'cvv2'"):
            assert key not in text, f"{key} reached the {place}"

    with server.platform.engine.connect() as connection:
        row = connection.execute(select(OrderRow).where(OrderRow.card_id == card_id)).one()
    key = server.platform.keys.data_keys[row.sensitive_key_id]
    sealed = json.loads(
        open_sealed(row.sensitive_data, key=key, context=sealing_context(row.issuer_id, card_id))
    )
    assert sealed["pan"] == pan
    assert sealed["trackData"]["track2"] == track2
