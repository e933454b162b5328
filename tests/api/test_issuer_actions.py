"""The issuer's order actions over real HTTP: cancel, hold and release, the return decision.

Each refused action must leave the order and its journal exactly as they were.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.factories import (
    DEMO,
    OTHER,
    ActingIssuerClient,
    OperatorClient,
    advance_clock,
    expect_ok,
    expect_refused,
    journal,
    journal_of,
    new_card_id,
    order_body,
    tick,
)


@pytest.fixture
def issuer(http: httpx.Client) -> ActingIssuerClient:
    return ActingIssuerClient(http)


@pytest.fixture
def operator(http: httpx.Client) -> OperatorClient:
    return OperatorClient(http)


def _order(issuer: ActingIssuerClient, card_id: str | None = None) -> str:
    card_id = card_id or new_card_id()
    answer = issuer.order(card_id, order_body(issuer.encrypt()))
    assert answer.status_code == 202, answer.text
    return card_id


def _drive(operator: OperatorClient, card_id: str, *actions: str) -> None:
    for action in actions:
        expect_ok(operator.act(card_id, action))


def test_the_issuer_cancels_until_production_starts(
    server: Server, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    early, started = _order(issuer), _order(issuer)
    _drive(operator, early, "prepare", "queue")
    _drive(operator, started, "prepare", "queue", "start")

    cancelled = expect_ok(issuer.cancel(early))
    assert cancelled["status"] == "FAILED"
    assert cancelled["details"]["status"] == "CARD_PROD_CANCELED"
    assert cancelled["errorCode"] == "CARD_PROD_CANCELED"
    assert "endTime" in cancelled
    assert "cancellableUntil" not in cancelled["details"]
    assert {k: v for k, v in issuer.operation(early).items() if k != "sequence"} == cancelled
    expect_refused(issuer.cancel(early), 409, "ILLEGAL_STATUS_TRANSITION")  # once is enough

    running = issuer.operation(started)
    assert "cancellableUntil" not in running["details"]
    history = journal_of(server.platform.engine, started)
    expect_refused(issuer.cancel(started), 409, "ILLEGAL_STATUS_TRANSITION")
    expect_refused(issuer.hold(started), 409, "ILLEGAL_STATUS_TRANSITION")  # not while personalized
    assert issuer.operation(started) == running
    assert journal_of(server.platform.engine, started) == history

    assert [s for _, _, s in journal_of(server.platform.engine, early)] == [
        "CARD_PROD_REQUESTED",
        "DATA_PREPARED",
        "CARD_PROD_READY",
        "CARD_PROD_CANCELED",
    ]
    _order(issuer, early)  # a cancelled card can be ordered again: its journal goes on
    assert [op["details"]["status"] for op in issuer.status(early).json()["operations"]] == [
        "CARD_PROD_CANCELED",
        "CARD_PROD_REQUESTED",
    ]
    assert [seq for seq, _, _ in journal_of(server.platform.engine, early)] == [1, 2, 3, 4, 5]


def test_an_issuer_hold_stops_every_move_but_cancellation(
    server: Server, http: httpx.Client, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    card_id = _order(issuer)

    held = expect_ok(issuer.hold(card_id, "fraud review"))
    assert held["details"]["onHold"] == "ISSUER"
    assert held["details"]["reason"] == "fraud review"
    assert held["details"]["status"] == "CARD_PROD_REQUESTED"
    history = journal_of(server.platform.engine, card_id)
    expect_refused(operator.act(card_id, "prepare"), 409, "ORDER_ON_HOLD")
    expect_refused(issuer.hold(card_id, "again"), 409, "ILLEGAL_STATUS_TRANSITION")
    advance_clock(http, 3600, headers=issuer.headers)
    assert tick(http, headers=issuer.headers) == 0  # the simulator leaves a held order alone
    assert issuer.operation(card_id)["details"]["onHold"] == "ISSUER"
    assert journal_of(server.platform.engine, card_id) == history

    released = expect_ok(issuer.release(card_id))
    assert "onHold" not in released["details"]
    assert "reason" not in released["details"]
    expect_refused(issuer.release(card_id), 409, "ILLEGAL_STATUS_TRANSITION")
    _drive(operator, card_id, "prepare")

    expect_ok(issuer.hold(card_id, "second look"))
    cancelled = expect_ok(issuer.cancel(card_id))  # cancelling a held order is allowed
    assert cancelled["details"]["status"] == "CARD_PROD_CANCELED"
    assert "onHold" not in cancelled["details"]

    assert journal_of(server.platform.engine, card_id) == [
        (1, "order.accepted", "CARD_PROD_REQUESTED"),
        (2, "order.held", "CARD_PROD_REQUESTED"),
        (3, "order.released", "CARD_PROD_REQUESTED"),
        (4, "order.status_changed", "DATA_PREPARED"),
        (5, "order.held", "DATA_PREPARED"),
        (6, "order.status_changed", "CARD_PROD_CANCELED"),
    ]
    events = journal(server.platform.engine, card_id)
    assert [e.payload["details"].get("onHold") for e in events] == [
        None,
        "ISSUER",
        None,
        None,
        "ISSUER",
        None,
    ]


def test_the_return_decision_is_taken_only_for_a_returned_card(
    server: Server, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    card_id = _order(issuer)

    def refused_at(step: str) -> None:
        before, history = issuer.operation(card_id), journal_of(server.platform.engine, card_id)
        for decision in ("RESHIP", "DESTROY"):
            answer = issuer.decide_return(card_id, decision)
            assert answer.status_code == 409, f"{decision} at {step}: {answer.text}"
            assert answer.json()["errorCode"] == "ILLEGAL_STATUS_TRANSITION"
        assert issuer.operation(card_id) == before
        assert journal_of(server.platform.engine, card_id) == history

    refused_at("CARD_PROD_REQUESTED")
    _drive(operator, card_id, "prepare", "queue", "start", "complete")
    refused_at("CARD_PROD_DONE")
    _drive(operator, card_id, "ship")
    expect_refused(issuer.hold(card_id), 409, "ILLEGAL_STATUS_TRANSITION")  # gone: nothing to hold
    refused_at("IN_TRANSIT")
    _drive(operator, card_id, "undeliverable")
    refused_at("UNDELIVERABLE")
    _drive(operator, card_id, "return")
    assert issuer.decide_return(card_id, "KEEP").status_code == 400

    reshipped = expect_ok(issuer.decide_return(card_id, "RESHIP", note="new address on file"))
    assert reshipped["details"]["shipment"]["status"] == "IN_TRANSIT"
    assert reshipped["details"]["shipment"]["message"] == "new address on file"
    assert reshipped["status"] == "SUCCESSFUL"
    refused_at("IN_TRANSIT again")
    _drive(operator, card_id, "return")  # the carrier brought it back once more

    destroyed = expect_ok(issuer.decide_return(card_id, "DESTROY"))
    assert destroyed["details"]["shipment"]["status"] == "DESTROYED"
    assert destroyed["details"]["shipment"]["message"] == "destroyed"
    refused_at("DESTROYED")
    assert [
        (t, e.payload["details"]["shipment"]["status"])
        for t, e in _shipment_events(server, card_id)
    ] == [
        ("order.status_changed", "IN_TRANSIT"),
        ("order.shipment_updated", "UNDELIVERABLE"),
        ("order.shipment_updated", "RETURNED"),
        ("order.shipment_updated", "IN_TRANSIT"),
        ("order.shipment_updated", "RETURNED"),
        ("order.shipment_updated", "DESTROYED"),
    ]


def _shipment_events(server: Server, card_id: str) -> list[tuple[str, Any]]:
    events = journal(server.platform.engine, card_id)
    return [(e.event_type, e) for e in events if "shipment" in e.payload["details"]]


def test_a_reshipment_can_carry_its_new_tracking_number(
    issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    card_id = _order(issuer)
    _drive(operator, card_id, "prepare", "queue", "start", "complete", "ship", "return")

    answer = issuer.decide_return(card_id, "RESHIP", trackingNumber="NEWTRACK123")

    assert expect_ok(answer)["details"]["shipment"]["trackingNumber"] == "NEWTRACK123"


def test_the_issuer_cannot_lift_the_bureaus_hold(
    server: Server, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    card_id = _order(issuer)
    expect_ok(operator.act(card_id, "hold", reason="quality check"))
    history = journal_of(server.platform.engine, card_id)

    expect_refused(issuer.release(card_id), 409, "HOLD_NOT_YOURS")

    assert issuer.operation(card_id)["details"]["onHold"] == "BUREAU"
    assert journal_of(server.platform.engine, card_id) == history


def test_another_issuer_cannot_act_on_the_card(
    server: Server, http: httpx.Client, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    card_id = _order(issuer)
    _drive(operator, card_id, "prepare", "queue", "start", "complete", "ship", "return")
    before, history = issuer.operation(card_id), journal_of(server.platform.engine, card_id)
    other = ActingIssuerClient(http, OTHER)

    through_demo_path = [
        other.cancel(card_id, issuer_id=DEMO),
        other.hold(card_id, issuer_id=DEMO),
        other.release(card_id, issuer_id=DEMO),
        other.decide_return(card_id, "DESTROY", issuer_id=DEMO),
        other.status(card_id, issuer_id=DEMO),
        http.put(
            f"/sandbox/v1/issuers/{DEMO}/physicalCards/{card_id}/scenario",
            json={"scenario": "CANCELLED"},
            headers=other.headers,
        ),
    ]
    for answer in through_demo_path:
        expect_refused(answer, 403, "ISSUER_MISMATCH")
    through_own_path = [
        other.cancel(card_id),
        other.hold(card_id),
        other.release(card_id),
        other.decide_return(card_id, "DESTROY"),
        other.status(card_id),
    ]
    for answer in through_own_path:
        expect_refused(answer, 404, "CARD_NOT_FOUND")

    assert issuer.operation(card_id) == before
    assert journal_of(server.platform.engine, card_id) == history
