"""The audit trail over the operator API: who did what to which order, and when; append-only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from issuance.db.models import AuditRow
from tests.conftest import Server
from tests.factories import (
    DEMO,
    ActingIssuerClient,
    OperatorClient,
    advance_clock,
    expect_ok,
    expect_refused,
    new_card_id,
    order_body,
)


@pytest.fixture
def issuer(http: httpx.Client) -> ActingIssuerClient:
    return ActingIssuerClient(http)


@pytest.fixture
def operator(http: httpx.Client) -> OperatorClient:
    return OperatorClient(http)


def _trail(operator: OperatorClient, **params: Any) -> list[dict[str, Any]]:
    answer = operator.http.get("/operator/v1/audit", params=params, headers=operator.headers)
    entries: list[dict[str, Any]] = expect_ok(answer)["entries"]
    return entries


def test_each_actor_and_action_on_an_order_is_recorded_newest_first(
    issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    card_id = new_card_id()
    body = order_body(issuer.encrypt())
    placed = issuer.order(card_id, body)
    assert issuer.order(card_id, body).headers["Idempotent-Replayed"] == "true"
    expect_ok(issuer.hold(card_id, "fraud review of 4539910012345676"))
    expect_ok(issuer.release(card_id))
    expect_ok(operator.act(card_id, "prepare"))
    expect_ok(issuer.cancel(card_id))
    assert issuer.set_scenario(card_id, "SUCCESS").status_code == 200

    entries = _trail(operator, issuerId=DEMO, cardId=card_id)

    summary = [(e["actorKind"], e["actor"], e["action"]) for e in reversed(entries)]
    assert summary == [
        ("ISSUER", "demobank01", "order.placed"),
        ("ISSUER", "demobank01", "order.replayed"),
        ("ISSUER", "demobank01", "order.hold"),
        ("ISSUER", "demobank01", "order.release"),
        ("OPERATOR", "operator", "order.prepare"),
        ("ISSUER", "demobank01", "order.cancel"),
        ("SYSTEM", "platform", "sensitive_data.purged"),
        ("ISSUER", "demobank01", "sandbox.scenario"),
    ]
    operation_id = placed.json()["operationId"]
    assert {e.get("operationId") for e in entries[1:]} == {operation_id}
    assert all(e["actorIssuerId"] == DEMO for e in entries if e["actorKind"] == "ISSUER")
    assert [e["auditId"] for e in entries] == sorted((e["auditId"] for e in entries), reverse=True)
    assert all(e["at"].endswith("Z") for e in entries)
    assert "4539910012345676" not in str(entries)  # free text is never copied into the trail
    assert "fraud review" not in str(entries)


def test_the_trail_is_filtered_by_actor_and_limited(
    http: httpx.Client, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    cards = [new_card_id() for _ in range(3)]
    for card_id in cards:
        assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
        expect_ok(operator.act(card_id, "prepare"))
    advance_clock(http, 60, headers=operator.headers)
    expect_ok(operator.replenish("BODY-DEBIT-BLUE", 5))

    by_operator = _trail(operator, actor="operator")
    assert [e["action"] for e in by_operator[:2]] == ["stock.replenish", "sandbox.clock_advance"]
    assert {e["actor"] for e in by_operator} == {"operator"}
    assert [e["cardId"] for e in by_operator[2:5]] == cards[::-1]
    assert len(_trail(operator, limit=2)) == 2
    assert _trail(operator, actor="nobody") == []


def test_only_operators_read_the_trail_and_filters_are_checked(
    issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    answer = issuer.http.get("/operator/v1/audit", headers=issuer.headers)
    expect_refused(answer, 403, "OPERATOR_ONLY")
    for params, field in (
        ({"cardId": "bad card"}, "cardId"),
        ({"limit": 0}, "limit"),
        ({"issuerId": "SHORT"}, "issuerId"),
    ):
        bad = operator.http.get("/operator/v1/audit", params=params, headers=operator.headers)
        assert bad.status_code == 400
        assert bad.json()["field"] == field


def test_the_database_refuses_to_change_or_remove_an_entry(
    server: Server, issuer: ActingIssuerClient
) -> None:
    assert issuer.order(new_card_id(), order_body(issuer.encrypt())).status_code == 202
    engine = server.platform.engine
    for statement in (
        update(AuditRow).values(actor_id="someone-else"),
        delete(AuditRow),
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(statement)
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text("TRUNCATE audit_log"))
    with engine.connect() as connection:
        actors = set(connection.scalars(text("SELECT actor_id FROM audit_log")))
    assert actors == {"demobank01"}


def test_operator_actions_on_notifications_are_recorded(
    issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    assert issuer.order(new_card_id(), order_body(issuer.encrypt())).status_code == 202
    post = operator.http.post
    recovered = post(
        "/operator/v1/events:recover",
        json={"since": "2020-01-01T00:00:00Z"},
        headers=operator.headers,
    )
    assert expect_ok(recovered)["replayed"] >= 1
    enable = f"/operator/v1/issuers/{DEMO}/endpoints/main:enable"
    expect_ok(post(enable, headers=operator.headers))

    [enabled, recovery] = _trail(operator, actor="operator", limit=2)

    assert (recovery["action"], recovery["detail"]) == (
        "notifications.recover",
        f"deliveries={recovered.json()['replayed']}",
    )
    assert (enabled["action"], enabled["issuerId"]) == ("endpoint.enable", DEMO)
    assert enabled["detail"] == "endpoint=main;wasDisabled=False"
