"""The bureau's production / shipment report: many orders advanced at once, re-import a no-op.

The CLI (`issuance batches report`) with JSON Lines and a small commit size, so one card's
lines fall in different transactions; the operator upload (`POST /operator/v1/production-
reports`) with CSV. Both databases.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from issuance.cli.main import app
from issuance.db.models import AuditRow, EventRow
from issuance.platform import Platform
from tests.conftest import Server
from tests.factories import (
    DEMO,
    ActingIssuerClient,
    OperatorClient,
    expect_ok,
    journal_of,
    new_card_id,
    order_body,
)


@pytest.fixture
def issuer(http: httpx.Client) -> ActingIssuerClient:
    return ActingIssuerClient(http)


@pytest.fixture
def operator(http: httpx.Client) -> OperatorClient:
    return OperatorClient(http)


def _batched(issuer: ActingIssuerClient, operator: OperatorClient, count: int) -> list[str]:
    """`count` cards at CARD_PROD_READY, in one production batch."""
    cards = [new_card_id() for _ in range(count)]
    for card_id in cards:
        assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
        expect_ok(operator.act(card_id, "prepare"))
    expect_ok(operator.run_batches())
    return cards


def _at(platform: Platform, minutes_ago: int) -> str:
    return (platform.clock() - timedelta(minutes=minutes_ago)).isoformat()


def _events(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(EventRow)) or 0)


@pytest.fixture
def run_report(server: Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings = server.platform.settings
    monkeypatch.setenv("ISSUANCE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ISSUANCE_KEYS_DIR", str(settings.keys_dir))

    def run(file: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        args = ["batches", "report", str(file), "--json", "--batch-size", "4"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        summary: dict[str, Any] = json.loads(result.stdout)
        lines = Path(summary["report"]).read_text().splitlines()
        return summary, [json.loads(line) for line in lines]

    return run


def test_a_report_advances_many_orders_and_refuses_each_bad_line_with_its_code(
    server: Server,
    issuer: ActingIssuerClient,
    operator: OperatorClient,
    run_report: Any,
    tmp_path: Path,
) -> None:
    platform = server.platform
    shipped, done, spoiled, idle = _batched(issuer, operator, 4)
    operation_of = {c: issuer.operation(c)["operationId"] for c in (shipped, done, spoiled, idle)}
    by_card = {"issuerId": DEMO}
    good: list[Any] = [
        {"operationId": operation_of[shipped], "event": "STARTED", "at": _at(platform, 50)},
        {"cardId": done, **by_card, "event": "STARTED", "at": _at(platform, 50)},
        {"cardId": spoiled, **by_card, "event": "STARTED", "at": _at(platform, 50)},
        {"operationId": operation_of[shipped], "event": "DONE", "at": _at(platform, 40)},
        {"cardId": done, **by_card, "event": "DONE", "at": _at(platform, 40)},
        {
            "cardId": spoiled,
            **by_card,
            "event": "EXCEPTION",
            "at": _at(platform, 40),
            "reason": "embosser jam",
            "errorCode": "CARD_SPOILED",
        },
        {
            "operationId": operation_of[shipped],
            "cardId": shipped,
            "event": "SHIPPED",
            "at": _at(platform, 30),
            "carrier": "laposte",
            "trackingNumber": "LP123456789FR",
        },
    ]
    bad: list[tuple[Any, str, str | None]] = [
        (
            {"cardId": idle, **by_card, "event": "DONE", "at": _at(platform, 5)},
            "ILLEGAL_STATUS_TRANSITION",
            "details.status",
        ),
        (
            {"cardId": idle, **by_card, "event": "DATA_EXCEPTION", "at": _at(platform, 5)},
            "ILLEGAL_STATUS_TRANSITION",
            "details.status",
        ),
        (
            {"operationId": "no-such-operation", "event": "DONE", "at": _at(platform, 5)},
            "OPERATION_NOT_FOUND",
            "operationId",
        ),
        (
            {"cardId": "card-unknown", **by_card, "event": "DONE", "at": _at(platform, 5)},
            "CARD_NOT_FOUND",
            "cardId",
        ),
        (  # a NUL, which PostgreSQL refuses in any text: looked up, it would fail the batch
            {"operationId": "op\u0000x", "event": "DONE", "at": _at(platform, 5)},
            "FIELD_INVALID_FORMAT",
            "operationId",
        ),
        (
            {"cardId": "card\u0000x", **by_card, "event": "DONE", "at": _at(platform, 5)},
            "FIELD_INVALID_FORMAT",
            "cardId",
        ),
        ({"cardId": idle, "event": "STARTED", "at": _at(platform, 5)}, "FIELD_MISSING", "issuerId"),
        (
            {"cardId": idle, **by_card, "event": "PRINTED", "at": _at(platform, 5)},
            "FIELD_INVALID_VALUE",
            "event",
        ),
        (
            {"cardId": idle, **by_card, "event": "STARTED", "at": "2026-12-01T10:00:00"},
            "FIELD_INVALID_FORMAT",
            "at",
        ),
        (
            {"cardId": idle, **by_card, "event": "STARTED", "at": _at(platform, -60)},
            "FIELD_INVALID_VALUE",
            "at",
        ),
        (
            {
                "cardId": idle,
                **by_card,
                "event": "STARTED",
                "at": _at(platform, 5),
                "pan": "4539910000000002",
            },
            "SENSITIVE_DATA_NOT_ENCRYPTED",
            "pan",
        ),
        ("{not json", "INVALID_JSON", None),
    ]
    report = tmp_path / "report-20261203.jsonl"
    lines = [*good, *(line for line, _, _ in bad)]
    report.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))

    summary, results = run_report(report)

    assert (summary["lines"], summary["applied"], summary["refused"]) == (19, 7, 12)
    assert [r["result"] for r in results[:7]] == ["APPLIED"] * 7
    assert [(r["result"], r.get("errorCode"), r.get("field")) for r in results[7:]] == [
        ("REFUSED", code, field) for _, code, field in bad
    ]
    assert [r["line"] for r in results] == list(range(1, 20))
    assert "4539910000000002" not in Path(summary["report"]).read_text()
    final = issuer.operation(shipped)
    assert final["details"]["status"] == "CARD_SHIPPED"
    assert final["details"]["shipment"]["trackingNumber"] == "LP123456789FR"
    assert issuer.operation(done)["details"]["status"] == "CARD_PROD_DONE"
    exception = issuer.operation(spoiled)
    assert (exception["details"]["status"], exception["errorCode"]) == (
        "CARD_PROD_EXCEPTION",
        "CARD_SPOILED",
    )
    assert issuer.operation(idle)["details"]["status"] == "CARD_PROD_READY"
    assert [status for _, _, status in journal_of(platform.engine, shipped)] == [
        "CARD_PROD_REQUESTED",
        "DATA_PREPARED",
        "CARD_PROD_READY",
        "CARD_PROD_ONGOING",
        "CARD_PROD_DONE",
        "CARD_SHIPPED",
    ]  # one event (one notification) per state change
    with platform.engine.connect() as connection:
        audited = connection.scalars(
            select(AuditRow.detail).where(
                AuditRow.card_id == shipped, AuditRow.action == "order.ship"
            )
        ).all()
    assert audited == ["report=report-20261203.jsonl;line=7"]

    events = _events(platform)
    again, results_again = run_report(report)  # the same file, once more

    assert (again["applied"], again["alreadyApplied"], again["refused"]) == (0, 7, 12)
    assert [r["result"] for r in results_again[:7]] == ["ALREADY_APPLIED"] * 7
    assert _events(platform) == events
    assert issuer.operation(shipped) == final


def test_an_uploaded_csv_report_answers_one_result_per_line(
    server: Server, http: httpx.Client, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    platform = server.platform
    cards = _batched(issuer, operator, 3)
    rows = [
        {"cardId": card_id, "issuerId": DEMO, "event": "STARTED", "at": _at(platform, 10)}
        for card_id in cards
    ]
    rows.append({"cardId": cards[0], "issuerId": DEMO, "event": "SHIPPED", "at": _at(platform, 5)})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["cardId", "issuerId", "event", "at", "carrier"])
    writer.writeheader()
    writer.writerows(rows)

    def upload(body: str, content_type: str = "text/csv") -> httpx.Response:
        return http.post(
            "/operator/v1/production-reports",
            params={"name": "daily.csv"},
            content=body.encode(),
            headers={**operator.headers, "Content-Type": content_type},
        )

    answer = expect_ok(upload(text.getvalue()))

    assert (answer["lines"], answer["applied"], answer["refused"]) == (4, 3, 1)
    assert answer["results"][3] == {
        "line": 5,
        "cardId": cards[0],
        "result": "REFUSED",
        "operationId": issuer.operation(cards[0])["operationId"],
        "errorCode": "ILLEGAL_STATUS_TRANSITION",
        "field": "details.status",
    }
    assert {issuer.operation(c)["details"]["status"] for c in cards} == {"CARD_PROD_ONGOING"}
    again = expect_ok(upload(text.getvalue()))
    assert (again["applied"], again["alreadyApplied"], again["refused"]) == (0, 3, 1)
    wrong_type = upload("{}", "application/json")
    assert (wrong_type.status_code, wrong_type.json()["errorCode"]) == (
        400,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    bad_header = upload("cardId,cardId\nx,y\n")
    assert (bad_header.status_code, bad_header.json()["errorCode"]) == (400, "FILE_INVALID_HEADER")
    as_issuer = http.post(
        "/operator/v1/production-reports",
        content=b"",
        headers={**issuer.headers, "Content-Type": "text/csv"},
    )
    assert as_issuer.status_code == 403
