"""`issuance orders import`: every API error class per line, the report, re-imports, CSV.

Run in-process (Typer's runner) on each database; the killed-process case is in
tests/e2e/test_order_import_cli.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwe
from joserfc.jwk import ECKey
from sqlalchemy import Engine, event, func, select
from typer.testing import CliRunner

from issuance.api.errors import schema_problems
from issuance.cli.main import app
from issuance.db.models import OrderRow
from issuance.domain.audit import PLATFORM
from issuance.platform import Platform
from issuance.services.importing import Importer, LineReport
from issuance.services.order_files import FileFormat, records
from issuance.services.unit_of_work import Collision
from tests.factories import DEMO, card_data, encrypt, luhn_pan, new_card_id, order_body

USA = {"line1": "1 Main St", "zipCode": "10001", "city": "New York", "countryCode": "US"}


@pytest.fixture
def run_import(platform: Platform, keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ISSUANCE_DATABASE_URL", platform.settings.database_url)
    monkeypatch.setenv("ISSUANCE_KEYS_DIR", str(keys_dir))

    def run(*args: str) -> dict[str, Any]:
        result = CliRunner().invoke(app, ["orders", "import", *args, "--json"])
        assert result.exit_code == 0, result.output
        summary: dict[str, Any] = json.loads(result.stdout)
        return summary

    return run


def _orders(platform: Platform) -> list[tuple[str, str | None]]:
    with platform.engine.connect() as connection:
        rows = connection.execute(select(OrderRow.card_id, OrderRow.input_file_name)).all()
    return [(row.card_id, row.input_file_name) for row in rows]


def _report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _bad_lines(jwks: dict[str, Any]) -> list[tuple[Any, str, str | None]]:
    """(line, errorCode, field): one line per validation class the API has."""
    key = ECKey.import_key(jwks["keys"][0])
    stranger = ECKey.generate_key("P-256", parameters={"kid": "not-ours"})

    def body(**change: Any) -> dict[str, Any]:
        return {"cardId": new_card_id(), **order_body(encrypt(card_data(), jwks), **change)}

    def token(header: dict[str, str], payload: bytes, with_key: Any) -> dict[str, Any]:
        return body(encryptedData=jwe.encrypt_compact(header, payload, with_key))

    assert key.kid is not None
    ec = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid}
    return [
        ('{"services": ', "INVALID_JSON", None),
        ("[1, 2]", "FIELD_INVALID_FORMAT", None),
        (body(services=None), "FIELD_MISSING", "services"),
        (body(services={"issuance": "REISSUE"}), "FIELD_INVALID_VALUE", "services.issuance"),
        (body(consumerId="has spaces"), "FIELD_INVALID_FORMAT", "consumerId"),
        ({**body(), "cardId": "has space"}, "FIELD_INVALID_FORMAT", "cardId"),
        (body(colour="blue"), "FIELD_UNKNOWN", "colour"),
        (
            body(cardDesign={"customLines": ["a"] * 7}),
            "FIELD_TOO_MANY_ITEMS",
            "cardDesign.customLines",
        ),
        (
            body(trackData={"track2": "4539910000000002=2911"}),
            "SENSITIVE_DATA_NOT_ENCRYPTED",
            "trackData",
        ),
        (
            body(encryptedData={"pan": luhn_pan("45399100")}),
            "SENSITIVE_DATA_NOT_ENCRYPTED",
            "encryptedData",
        ),
        (
            body(distributionChannel="INSTANT"),
            "DISTRIBUTION_CHANNEL_NOT_SUPPORTED",
            "distributionChannel",
        ),
        (body(shipment=None), "FIELD_MISSING", "shipment"),
        (body(issuerRequestId=None), "FIELD_MISSING", "issuerRequestId"),  # files only
        (body(encryptedData="not-a-jwe"), "INVALID_JWE", "encryptedData"),
        (token({**ec, "kid": "not-ours"}, b"{}", stranger), "UNKNOWN_JWE_KEY", "encryptedData"),
        (token({**ec, "enc": "A128GCM"}, b"{}", key), "UNSUPPORTED_JWE_ALGORITHM", "encryptedData"),
        (token(ec, b"[1]", key), "INVALID_JWE_CONTENT", "encryptedData"),
        (
            body(encryptedData=encrypt(card_data(exp="2913"), jwks)),
            "INVALID_JWE_CONTENT",
            "encryptedData.exp",
        ),
        (body(cardProductId="OTHER-GOLD"), "CARD_PRODUCT_UNKNOWN", "cardProductId"),
        (
            body(services={"issuance": "CREATION", "priority": "VIP"}),
            "PRIORITY_NOT_ALLOWED",
            "services.priority",
        ),
        (body(paymentApplication=None), "PAYMENT_APPLICATION_REQUIRED", "paymentApplication"),
        (
            body(encryptedData=encrypt(card_data(pan=luhn_pan("541275")), jwks)),
            "PAN_OUTSIDE_BIN_RANGE",
            "encryptedData.pan",
        ),
        (
            body(shipment={"type": "INDIVIDUAL", "deliveryAddress": USA, "individualAddress": USA}),
            "COUNTRY_NOT_ALLOWED",
            "shipment.deliveryAddress.countryCode",
        ),
    ]


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_a_mixed_file_is_reported_line_by_line_and_re_imported_as_replays(
    platform: Platform, run_import: Any, tmp_path: Path
) -> None:
    jwks = platform.keys.public_jwks()
    good = [{"cardId": new_card_id(), **order_body(encrypt(card_data(), jwks))} for _ in range(3)]
    again = {**good[0], "issuerRequestId": "req-other-key"}  # same card, in progress
    reused = {**good[1], "cardId": new_card_id()}  # same key, other card
    bad = _bad_lines(jwks)
    lines: list[Any] = [good[0], *[line for line, _, _ in bad], good[1], "", again, reused, good[2]]
    path = _write(tmp_path / "portfolio.jsonl", lines)
    report = tmp_path / "report.jsonl"

    summary = run_import(str(path), "--issuer", DEMO, "--report", str(report), "--batch-size", "7")

    expected: list[tuple[int, str, str | None, str | None]] = [(1, "ACCEPTED", None, None)]
    expected += [(2 + i, "REFUSED", code, field) for i, (_, code, field) in enumerate(bad)]
    after = 2 + len(bad)  # the blank line is skipped but keeps its number
    expected += [
        (after, "ACCEPTED", None, None),
        (after + 2, "REFUSED", "ORDER_IN_PROGRESS", "cardId"),
        (after + 3, "REFUSED", "IDEMPOTENCY_KEY_REUSED", "issuerRequestId"),
        (after + 4, "ACCEPTED", None, None),
    ]
    rows = _report(report)
    assert [(r["line"], r["result"], r.get("errorCode"), r.get("field")) for r in rows] == expected
    assert rows[0]["cardId"] == good[0]["cardId"]
    assert rows[0]["operationId"]
    assert {k: summary[k] for k in ("lines", "accepted", "replayed", "refused")} == {
        "lines": len(expected),
        "accepted": 3,
        "replayed": 0,
        "refused": len(expected) - 3,
    }
    assert sorted(_orders(platform)) == sorted((g["cardId"], "portfolio.jsonl") for g in good)
    assert "4539910000000002" not in report.read_text()

    again_summary = run_import(str(path), "--issuer", DEMO, "--report", str(report))
    assert (again_summary["accepted"], again_summary["replayed"]) == (0, 3)
    assert [r["operationId"] for r in _report(report) if r["result"] == "REPLAYED"] == [
        r["operationId"] for r in rows if r["result"] == "ACCEPTED"
    ]
    assert len(_orders(platform)) == 3


def test_a_csv_file_maps_dotted_columns_onto_the_order_body(
    platform: Platform, run_import: Any, tmp_path: Path
) -> None:
    jwks = platform.keys.public_jwks()
    address = ["Ada", "Lovelace", "10 Rue de Rivoli", "75001", "Paris", "FR"]
    columns = ["firstName", "lastName", "line1", "zipCode", "city", "countryCode"]
    header = [
        "cardId",
        "issuerRequestId",
        "cardProductId",
        "services.issuance",
        "services.delivery",
        "services.pinMailer",
        "encryptedData",
        "paymentApplication.config",
        "paymentApplication.odaKeyIndex",
        "paymentApplication.derivationKeyIndex",
        "shipment.type",
        "cardDesign.customLines.0",
        *[f"shipment.deliveryAddress.{c}" for c in columns],
        *[f"shipment.individualAddress.{c}" for c in columns],
        "pan",
    ]
    fixed = ["DEMO-DEBIT", "CREATION", "laposte-lettre", "false"]

    def row(card_id: str, *, pan: str = "") -> list[str]:
        jwe_token = encrypt(card_data(), jwks)
        key = f"req-{card_id}"
        payment = ["VISA-DEBIT", "1", "2"]
        return [
            card_id,
            key,
            *fixed,
            jwe_token,
            *payment,
            "INDIVIDUAL",
            "MEMBER 7",
            *address,
            *address,
            pan,
        ]

    cards = [new_card_id() for _ in range(3)]
    path = tmp_path / "cards.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerows([header, row(cards[0]), row(cards[1], pan=luhn_pan("45399100"))])
        writer.writerow(row(cards[2]))
    report = tmp_path / "cards.report.csv"

    summary = run_import(str(path), "--issuer", DEMO, "--report", str(report))

    with report.open(newline="") as lines:
        rows = list(csv.DictReader(lines))
    assert [(r["line"], r["cardId"], r["result"], r["errorCode"], r["field"]) for r in rows] == [
        ("2", cards[0], "ACCEPTED", "", ""),
        ("3", cards[1], "REFUSED", "SENSITIVE_DATA_NOT_ENCRYPTED", "pan"),
        ("4", cards[2], "ACCEPTED", "", ""),
    ]
    assert summary["accepted"] == 2
    assert sorted(_orders(platform)) == sorted((c, "cards.csv") for c in (cards[0], cards[2]))
    with platform.engine.connect() as connection:
        request = connection.scalar(select(OrderRow.request).where(OrderRow.card_id == cards[0]))
    assert request is not None
    assert request["cardDesign"]["customLines"] == ["MEMBER 7"]  # numbered columns: a list
    assert request["services"]["pinMailer"] is False  # coerced as the API would


def test_orders_are_committed_in_batches_not_one_by_one(
    platform: Platform, run_import: Any, tmp_path: Path
) -> None:
    """Ten cards with --batch-size 4: three commits, not ten."""
    jwks = platform.keys.public_jwks()
    lines = [{"cardId": new_card_id(), **order_body(encrypt(card_data(), jwks))} for _ in range(10)]
    path = _write(tmp_path / "ten.jsonl", lines)
    commits: list[object] = []
    record = lambda connection: commits.append(connection)  # noqa: E731
    event.listen(Engine, "commit", record)
    try:
        summary = run_import(str(path), "--issuer", DEMO, "--batch-size", "4")
    finally:
        event.remove(Engine, "commit", record)
    assert summary["accepted"] == 10
    assert len(commits) == 3
    with platform.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(OrderRow)) == 10


def test_a_batch_that_collides_is_redone_card_by_card(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent writer wins a batch's commit: each card is then placed alone, none twice."""
    jwks = platform.keys.public_jwks()
    lines = [{"cardId": new_card_id(), **order_body(encrypt(card_data(), jwks))} for _ in range(3)]
    path = _write(tmp_path / "three.jsonl", [*lines, '{"oops"'])
    opened: list[Any] = []

    def uow() -> Any:
        unit = platform.uow()
        if not opened:  # the batch's unit of work: its commit loses the race

            def lose_the_race() -> None:
                unit.rollback()
                raise Collision("a concurrent writer")

            monkeypatch.setattr(unit, "commit", lose_the_race)
        opened.append(unit)
        return unit

    importer = Importer(
        issuer_id=DEMO,
        file_name=path.name,
        uow=uow,
        keys=platform.intake_keys,
        clock=platform.clock,
        new_id=platform.new_id,
        actor=PLATFORM,
        schema_problems=lambda error: schema_problems([dict(e) for e in error.errors()]),
    )
    reports: list[LineReport] = []
    with path.open("rb") as stream:
        summary = importer.run(records(stream, FileFormat.JSONL), reports.extend)

    assert [(r.line, r.result.value, r.error_code) for r in reports] == [
        (1, "ACCEPTED", None),
        (2, "ACCEPTED", None),
        (3, "ACCEPTED", None),
        (4, "REFUSED", "INVALID_JSON"),
    ]
    assert (summary.accepted, summary.refused, len(opened)) == (3, 1, 4)
    assert sorted(card for card, _ in _orders(platform)) == sorted(x["cardId"] for x in lines)
