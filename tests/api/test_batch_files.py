"""Production batch files: exported for the centre's key, decrypted only on the machine side.

Over HTTP (`/operator/v1/batches…`) and the CLI (`issuance batches list|export`), on both
databases.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from issuance.cli.main import app
from issuance.db.models import AuditRow
from issuance.security.field_encryption import encrypt_fields
from tests.conftest import Server
from tests.factories import (
    ActingIssuerClient,
    OperatorClient,
    card_data,
    expect_ok,
    luhn_pan,
    new_card_id,
    order_body,
)
from tests.production_files import centre_private_key, read_batch_file


def _card() -> dict[str, Any]:
    pan = luhn_pan("45399100")
    return card_data(
        pan=pan,
        cvv1="654",
        trackData={
            "track1": f"B{pan}^LOVELACE/ADA^2911201000000000000",
            "track2": f"{pan}=29112010000012345",
        },
    )


def _secrets(card: dict[str, Any]) -> list[str]:
    """What must not be in a file in clear: the PAN, the tracks, and any card-data field (a
    3-digit CSC alone would match base64 by chance, so its key is looked for)."""
    return [card["pan"], *card["trackData"].values(), '"pan"', '"cvv', "trackData"]


@pytest.fixture
def issuer(http: httpx.Client) -> ActingIssuerClient:
    return ActingIssuerClient(http)


@pytest.fixture
def operator(http: httpx.Client) -> OperatorClient:
    return OperatorClient(http)


def _batch(
    issuer: ActingIssuerClient, operator: OperatorClient, count: int
) -> tuple[str, dict[str, dict[str, Any]]]:
    """`count` cards ordered, prepared and batched together: the batch name and card data."""
    cards = {}
    for _ in range(count):
        card_id, card = new_card_id(), _card()
        body = order_body(
            encrypt_fields(card, issuer.jwks["keys"][0]), cardDesign={"customLines": ["ADA L"]}
        )
        assert issuer.order(card_id, body).status_code == 202
        expect_ok(operator.act(card_id, "prepare"))
        cards[card_id] = card
    [batch] = expect_ok(operator.run_batches())["batches"]
    assert sorted(batch["cardIds"]) == sorted(cards)
    return batch["productionBatch"], cards


def _file(http: httpx.Client, operator: OperatorClient, name: str) -> httpx.Response:
    return http.get(f"/operator/v1/batches/{name}/file", headers=operator.headers)


def test_the_file_holds_card_data_only_for_the_centre_key(
    server: Server, http: httpx.Client, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    name, cards = _batch(issuer, operator, 3)
    withdrawn = next(iter(cards))
    expect_ok(issuer.cancel(withdrawn))  # cancelled after batching: not in the file

    answer = _file(http, operator, name)

    assert answer.status_code == 200, answer.text
    for card in cards.values():
        for value in _secrets(card):
            assert value.encode() not in answer.content
    key = centre_private_key(server.platform.settings.keys_dir, "PC-PARIS")
    header, records, trailer = read_batch_file(answer.content, key)
    assert header["batch"] == name
    assert header["centreId"] == "PC-PARIS"
    assert header["cardProductId"] == "DEMO-DEBIT"
    assert header["count"] == trailer["count"] == 2
    assert header["keyId"] == key.kid
    assert header["withdrawnCardIds"] == [withdrawn]
    assert {r["cardId"]: r["cardData"] for r in records} == {
        card_id: card for card_id, card in cards.items() if card_id != withdrawn
    }
    for record in records:
        assert record["cardDesign"]["customLines"] == ["ADA L"]
        assert record["services"]["delivery"] == "laposte-lettre"
        assert record["operationId"] == issuer.operation(record["cardId"])["operationId"]
        assert "encryptedData" not in record  # the issuer's JWE for the platform stays home
    with server.platform.engine.connect() as connection:
        exported = connection.scalars(
            select(AuditRow.card_id).where(AuditRow.action == "sensitive_data.exported")
        ).all()
    assert None not in exported
    assert sorted(c for c in exported if c is not None) == sorted(r["cardId"] for r in records)

    listed = expect_ok(http.get("/operator/v1/batches", headers=operator.headers))["batches"]
    assert [b for b in listed if b["name"] == name] == [
        {
            "name": name,
            "centreId": "PC-PARIS",
            "cardProductId": "DEMO-DEBIT",
            "priority": "STANDARD",
            "cards": 3,
            "withCardData": 2,
            "byStatus": {"CARD_PROD_READY": 2, "CARD_PROD_CANCELED": 1},
        }
    ]


def test_a_batch_whose_card_data_was_purged_is_refused(
    http: httpx.Client, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    name, cards = _batch(issuer, operator, 2)
    made = next(iter(cards))
    for action in ("start", "complete"):  # the data is destroyed once the card is made
        expect_ok(operator.act(made, action))

    answer = _file(http, operator, name)

    assert answer.status_code == 409
    assert answer.json()["errorCode"] == "SENSITIVE_DATA_PURGED"
    assert answer.json()["field"] == "cardId"
    assert made in answer.json()["error"]
    unknown = _file(http, operator, "PC-PARIS_NOTHING_20260101-0000.json")
    assert (unknown.status_code, unknown.json()["errorCode"]) == (404, "BATCH_UNKNOWN")
    assert http.get("/operator/v1/batches", headers=issuer.headers).status_code == 403


def test_the_cli_lists_and_writes_the_file_for_the_owner_only(
    server: Server,
    issuer: ActingIssuerClient,
    operator: OperatorClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = server.platform.settings
    monkeypatch.setenv("ISSUANCE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ISSUANCE_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("ISSUANCE_SANDBOX", "true")
    name, cards = _batch(issuer, operator, 2)
    out = tmp_path / "batch.jsonl"

    listed = CliRunner().invoke(app, ["batches", "list", "--json"])
    exported = CliRunner().invoke(app, ["batches", "export", name, "--out", str(out)])

    assert listed.exit_code == 0, listed.output
    assert [b["cards"] for b in json.loads(listed.stdout)["batches"] if b["name"] == name] == [2]
    assert exported.exit_code == 0, exported.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    for card in cards.values():
        assert all(value not in exported.output for value in _secrets(card))
    key = centre_private_key(settings.keys_dir, "PC-PARIS")
    _header, records, _trailer = read_batch_file(out.read_bytes(), key)
    assert {r["cardId"]: r["cardData"] for r in records} == cards
    missing = CliRunner().invoke(app, ["batches", "export", "NO_SUCH.json", "--out", str(out)])
    assert missing.exit_code == 1
    assert "BATCH_UNKNOWN" in missing.output
