"""The operator API (`/operator/v1`) over real HTTP: listing, actions, batches, SLA flags, access.

Every action is checked twice: in the answer and productionStatus, and in the event journal (one
event per change, none for a refused move).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.conftest import Server
from tests.factories import (
    ADDRESS,
    DEMO,
    OTHER,
    ActingIssuerClient,
    OperatorClient,
    advance_clock,
    expect_ok,
    expect_refused,
    journal,
    journal_of,
    luhn_pan,
    new_card_id,
    order_body,
)

MATERIALS = {"BODY-DEBIT-BLUE", "LETTER-WELCOME", "ENVELOPE-C5", "FLYER-WELCOME"}
"""What one card of `_full_order` consumes: body, carrier letter, envelope, insert."""


def _full_order(issuer: ActingIssuerClient, **fields: Any) -> dict[str, Any]:
    """A DEMO-DEBIT order with a welcome letter, an envelope and a flyer: four materials."""
    return order_body(
        issuer.encrypt(),
        services={
            "issuance": "CREATION",
            "delivery": "laposte-lettre",
            "cardCarrier": "WELCOME-LETTER",
            "packaging": "STANDARD-ENVELOPE",
        },
        packagingConfig={"inserts": ["FLYER-WELCOME"]},
        **fields,
    )


def _order(issuer: ActingIssuerClient, body: dict[str, Any] | None = None) -> str:
    card_id = new_card_id()
    answer = issuer.order(card_id, body or order_body(issuer.encrypt()))
    assert answer.status_code == 202, answer.text
    return card_id


def _cards(answer: httpx.Response) -> list[str]:
    return [o["cardId"] for o in expect_ok(answer)["orders"]]


def test_an_operator_drives_an_order_from_request_to_delivery(
    server: Server, http: httpx.Client
) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    card_id = _order(issuer, _full_order(issuer))
    stock_before = operator.stock()

    steps = {
        "prepare": "DATA_PREPARED",
        "queue": "CARD_PROD_READY",
        "start": "CARD_PROD_ONGOING",
        "complete": "CARD_PROD_DONE",
    }
    for action, status in steps.items():
        answer = expect_ok(operator.act(card_id, action))
        assert (answer["details"]["status"], answer["status"]) == (status, "PENDING"), action
        assert issuer.operation(card_id)["details"]["status"] == status, action

    stock_after = operator.stock()
    assert {item: stock_before[item] - stock_after[item] for item in stock_before} == {
        item: 1 if item in MATERIALS else 0 for item in stock_before
    }

    shipped = expect_ok(
        operator.act(
            card_id,
            "ship",
            carrier="dhl",
            trackingNumber="1Z999AA10123456784",
            trackingUrl="https://track.example/1Z999AA10123456784",
        )
    )
    assert shipped["status"] == "SUCCESSFUL"
    assert shipped["details"]["status"] == "CARD_SHIPPED"
    assert shipped["details"]["shipment"] == {
        "carrier": "dhl",
        "trackingNumber": "1Z999AA10123456784",
        "trackingUrl": "https://track.example/1Z999AA10123456784",
        "status": "IN_TRANSIT",
    }
    assert "endTime" in shipped

    delivered = expect_ok(operator.act(card_id, "deliver", reason="left with the concierge"))
    assert delivered["details"]["shipment"]["status"] == "DELIVERED"
    assert delivered["details"]["shipment"]["message"] == "left with the concierge"
    assert delivered["details"]["shipment"]["trackingNumber"] == "1Z999AA10123456784"
    assert {k: v for k, v in issuer.operation(card_id).items() if k != "sequence"} == delivered

    assert journal_of(server.platform.engine, card_id) == [
        (1, "order.accepted", "CARD_PROD_REQUESTED"),
        (2, "order.status_changed", "DATA_PREPARED"),
        (3, "order.status_changed", "CARD_PROD_READY"),
        (4, "order.status_changed", "CARD_PROD_ONGOING"),
        (5, "order.status_changed", "CARD_PROD_DONE"),
        (6, "order.status_changed", "CARD_SHIPPED"),
        (7, "order.shipment_updated", "CARD_SHIPPED"),
    ]


def test_orders_are_listed_by_status_most_recent_change_first(
    server: Server, http: httpx.Client
) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    other = ActingIssuerClient(http, OTHER)
    requested, prepared, later = _order(issuer), _order(issuer), _order(issuer)
    us_address = {**ADDRESS, "city": "Newark", "zipCode": "07102", "countryCode": "US"}
    other_body = order_body(
        other.encrypt(pan=luhn_pan("222300")),
        cardProductId="OTHER-CLASSIC",
        services={"issuance": "CREATION", "delivery": "usps-first-class"},
        shipment={
            "type": "INDIVIDUAL",
            "deliveryAddress": us_address,
            "individualAddress": us_address,
        },
    )
    theirs = new_card_id()
    assert other.order(theirs, other_body).status_code == 202, "OTHER's order"
    expect_ok(operator.act(prepared, "prepare"))
    expect_ok(operator.act(later, "prepare"))

    assert _cards(operator.orders("DATA_PREPARED")) == [later, prepared]
    assert _cards(operator.orders("CARD_PROD_REQUESTED", issuer_id=DEMO)) == [requested]
    assert set(_cards(operator.orders("CARD_PROD_REQUESTED"))) == {requested, theirs}
    both = operator.orders("CARD_PROD_REQUESTED", "DATA_PREPARED", issuer_id=DEMO)
    assert set(_cards(both)) == {requested, prepared, later}
    assert _cards(operator.orders("CARD_SHIPPED")) == []
    assert len(_cards(operator.orders(limit=2))) == 2

    listed = {o["cardId"]: o for o in expect_ok(operator.orders())["orders"]}
    assert listed[theirs]["issuerId"] == OTHER
    assert listed[prepared]["issuerId"] == DEMO
    assert listed[prepared]["details"]["status"] == "DATA_PREPARED"
    expect_refused(operator.orders("SHIPPED_BY_PIGEON"), 400, "FIELD_INVALID_VALUE")


def test_an_illegal_action_is_a_409_that_changes_nothing(
    server: Server, http: httpx.Client
) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    card_id = _order(issuer)
    expect_ok(operator.act(card_id, "prepare"))
    before, history = issuer.operation(card_id), journal_of(server.platform.engine, card_id)
    stock = operator.stock()

    for action in ("prepare", "start", "complete", "ship", "deliver", "return", "release"):
        expect_refused(operator.act(card_id, action), 409, "ILLEGAL_STATUS_TRANSITION")
        assert issuer.operation(card_id) == before, f"{action} changed the order"
        assert journal_of(server.platform.engine, card_id) == history, f"{action} wrote an event"
    assert operator.stock() == stock

    expect_refused(operator.act(new_card_id(), "prepare"), 404, "CARD_NOT_FOUND")
    assert operator.act(card_id, "teleport").status_code == 400
    expect_refused(
        operator.act(card_id, "ship", carrier="DHL Express!"), 400, "FIELD_INVALID_FORMAT"
    )
    assert issuer.operation(card_id) == before


def test_resume_is_only_for_an_order_in_a_production_exception(
    server: Server, http: httpx.Client
) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    card_id = _order(issuer)
    expect_ok(operator.act(card_id, "prepare"))
    before, history = issuer.operation(card_id), journal_of(server.platform.engine, card_id)

    expect_refused(operator.act(card_id, "resume"), 409, "ILLEGAL_STATUS_TRANSITION")

    assert issuer.operation(card_id) == before
    assert journal_of(server.platform.engine, card_id) == history


def test_operator_and_issuer_tokens_each_stay_on_their_side(
    server: Server, http: httpx.Client
) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    card_id = _order(issuer)
    operator_calls = [
        http.get("/operator/v1/orders", headers=issuer.headers),
        http.post(
            f"/operator/v1/issuers/{DEMO}/physicalCards/{card_id}/actions/prepare",
            headers=issuer.headers,
        ),
        http.post("/operator/v1/batches:run", headers=issuer.headers),
        http.post("/operator/v1/sla:review", headers=issuer.headers),
        http.get(f"/operator/v1/issuers/{DEMO}/stock", headers=issuer.headers),
        http.post(
            f"/operator/v1/issuers/{DEMO}/stock/BODY-DEBIT-BLUE:replenish",
            json={"quantity": 5},
            headers=issuer.headers,
        ),
    ]
    for answer in operator_calls:
        expect_refused(answer, 403, "OPERATOR_ONLY")
    expect_refused(http.get("/operator/v1/orders"), 401, "UNAUTHORIZED")
    wrong_secret = http.post(
        "/authz/v1/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "operator", "client_secret": "x"},
    )
    assert wrong_secret.status_code == 401

    card_path = f"/banking/v1/issuers/{DEMO}/physicalCards/{card_id}"
    issuer_calls = [
        http.get(f"{card_path}/productionStatus", headers=operator.headers),
        http.post(f"{card_path}/operations:cancel", headers=operator.headers),
        http.post(
            f"{card_path}/operations:hold", json={"reason": "mine"}, headers=operator.headers
        ),
        http.post(
            f"{card_path}/operations:production",
            json=order_body(issuer.encrypt()),
            headers=operator.headers,
        ),
    ]
    for answer in issuer_calls:
        expect_refused(answer, 403, "ISSUER_MISMATCH")
    assert issuer.operation(card_id)["details"]["status"] == "CARD_PROD_REQUESTED"
    assert journal_of(server.platform.engine, card_id) == [
        (1, "order.accepted", "CARD_PROD_REQUESTED")
    ]
    assert operator.stock()["BODY-DEBIT-BLUE"] == 50_000  # the issuer's replenish was refused


def test_batches_group_prepared_orders_by_centre_product_and_priority(
    server: Server, http: httpx.Client
) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    credit = {
        "cardProductId": "DEMO-CREDIT",
        "services": {"issuance": "CREATION", "delivery": "chronopost-express"},
    }
    debit_a, debit_b = _order(issuer), _order(issuer)
    debit_urgent = _order(
        issuer,
        order_body(
            issuer.encrypt(),
            services={"issuance": "CREATION", "delivery": "laposte-lettre", "priority": "URGENT"},
        ),
    )
    credit_card = _order(issuer, order_body(issuer.encrypt(pan=luhn_pan("541275")), **credit))
    not_prepared, held = _order(issuer), _order(issuer)
    for card_id in (debit_a, debit_b, debit_urgent, credit_card, held):
        expect_ok(operator.act(card_id, "prepare"))
    expect_ok(issuer.hold(held, "fraud review"))
    clock = expect_ok(http.get("/sandbox/v1/clock", headers=issuer.headers))["now"]

    batches = expect_ok(operator.run_batches())["batches"]

    names = {b["productionBatch"]: sorted(b["cardIds"]) for b in batches}
    stamp = _centre_stamp(clock)
    assert {re.sub(r"_\d{8}-\d{4}\.json$", "", name) for name in names} == {
        "PC-PARIS_DEMO-DEBIT_STANDARD",
        "PC-PARIS_DEMO-DEBIT_URGENT",
        "PC-PARIS_DEMO-CREDIT_STANDARD",
    }
    assert {name[-18:-5] for name in names} <= {stamp, _centre_stamp(clock, minutes=1)}
    by_prefix = {name.rsplit("_", 1)[0]: cards for name, cards in names.items()}
    assert by_prefix == {
        "PC-PARIS_DEMO-DEBIT_STANDARD": sorted([debit_a, debit_b]),
        "PC-PARIS_DEMO-DEBIT_URGENT": [debit_urgent],
        "PC-PARIS_DEMO-CREDIT_STANDARD": [credit_card],
    }
    for name, cards in names.items():
        for card_id in cards:
            operation = issuer.operation(card_id)
            assert operation["details"]["status"] == "CARD_PROD_READY"
            assert operation["details"]["productionBatch"] == name
            assert "inputFileName" not in operation
            assert [t for _, t, _ in journal_of(server.platform.engine, card_id)][
                -1
            ] == "order.status_changed"
    assert issuer.operation(not_prepared)["details"]["status"] == "CARD_PROD_REQUESTED"
    assert issuer.operation(held)["details"]["status"] == "DATA_PREPARED"
    assert "productionBatch" not in issuer.operation(held)["details"]

    assert expect_ok(operator.run_batches()) == {"batches": []}  # nothing left to batch


def _centre_stamp(iso: str, *, minutes: int = 0) -> str:
    """`20261125-1330`: the Paris wall-clock minute of a UTC ISO time (plus `minutes`)."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")) + timedelta(minutes=minutes)
    return f"{moment.astimezone(ZoneInfo('Europe/Paris')):%Y%m%d-%H%M}"


def test_sla_review_flags_at_risk_then_late_once_each(server: Server, http: httpx.Client) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    card_id = _order(issuer)
    placed = issuer.operation(card_id)
    start = datetime.fromisoformat(placed["startTime"].replace("Z", "+00:00"))
    due = datetime.fromisoformat(placed["details"]["dueDate"].replace("Z", "+00:00"))
    window = (due - start).total_seconds()
    assert window > 0

    assert expect_ok(operator.review_sla()) == {"changed": 0}  # on time is no news
    assert "slaStanding" not in issuer.operation(card_id)["details"]
    assert len(journal_of(server.platform.engine, card_id)) == 1

    standings = []
    for target in (0.9 * window, window + 60):  # 90 % of the window, then past the due date
        now = datetime.fromisoformat(
            expect_ok(http.get("/sandbox/v1/clock", headers=issuer.headers))["now"].replace(
                "Z", "+00:00"
            )
        )
        advance_clock(http, target - (now - start).total_seconds(), headers=issuer.headers)
        assert expect_ok(operator.review_sla()) == {"changed": 1}
        assert expect_ok(operator.review_sla()) == {"changed": 0}  # already flagged: no new event
        standings.append(issuer.operation(card_id)["details"].get("slaStanding"))

    assert standings == ["AT_RISK", "LATE"]
    events = journal(server.platform.engine, card_id)
    assert [(e.sequence, e.event_type) for e in events] == [
        (1, "order.accepted"),
        (2, "order.sla_standing_changed"),
        (3, "order.sla_standing_changed"),
    ]
    assert [e.payload["details"].get("slaStanding") for e in events] == [None, "AT_RISK", "LATE"]
    assert issuer.operation(card_id)["details"]["status"] == "CARD_PROD_REQUESTED"
