"""The operator's notification API over real HTTP: the delivery log, replays, endpoints, pings.

Deliveries are attempted by the test itself, against a real loopback receiver: `outbox.claim`,
one `sender.send` per claim, `outbox.settle` with the retry policy's decision. That is the
worker's contract with the outbox, without depending on how a worker schedules its POSTs.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.outbox import Settlement, claim, settle
from issuance.delivery.sender import message_id, send
from issuance.domain.parties import NotificationEndpoint
from issuance.domain.retry import RetryPolicy
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.services.workflow import Action, perform
from tests.conftest import Server
from tests.factories import (
    DEMO,
    OTHER,
    IssuerClient,
    OperatorClient,
    expect_ok,
    expect_refused,
    new_card_id,
    order_body,
)
from tests.receiver import Receiver, Reply

NOTIFY_PATH = f"/notifications/d1/v2/issuers/{DEMO}/cards"
DELIVERY_FIELDS = {
    "deliveryId",
    "eventId",
    "issuerId",
    "endpointId",
    "cardId",
    "sequence",
    "status",
    "nextAttemptAt",
    "deliveredAt",
    "lastStatusCode",
    "lastError",
    "attempts",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as listening:
        yield listening


@pytest.fixture
def dead() -> Iterator[Receiver]:
    """A bound loopback port nobody listens on: every connection is refused."""
    unstarted = Receiver()
    yield unstarted
    unstarted.stop()


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def point_demobank_at(platform: Platform, *urls: str) -> list[NotificationEndpoint]:
    """DEMOBANK01 notifies `main` at the first URL (then `second`, … at the others)."""
    sandbox = read_config(SANDBOX_CONFIG)
    names = ["main", "second", "third"]
    endpoints = [
        NotificationEndpoint(
            endpoint_id=name, base_url=url, signing_secrets=(new_secret(),), timeout_seconds=2
        )
        for name, url in zip(names, urls, strict=False)
    ]
    issuers = tuple(
        i.model_copy(update={"notification_endpoints": tuple(endpoints)})
        if i.issuer_id == DEMO
        else i
        for i in sandbox.issuers
    )
    load_config(sandbox.model_copy(update={"issuers": issuers}), uow=platform.uow())
    return endpoints


def order_cards(
    http: httpx.Client, platform: Platform, count: int, *, moves: tuple[Action, ...] = ()
) -> list[str]:
    issuer = IssuerClient(http)
    cards = [new_card_id() for _ in range(count)]
    for card_id in cards:
        expect_accepted = issuer.order(card_id, order_body(issuer.encrypt()))
        assert expect_accepted.status_code == 202, expect_accepted.text
        for action in moves:
            perform(
                action, issuer_id=DEMO, card_id=card_id, uow=platform.uow(), clock=platform.clock
            )
    return cards


def attempt_due(
    platform: Platform, endpoints: list[NotificationEndpoint], *, later: timedelta = timedelta(0)
) -> int:
    """Claim what is due `later` from now, POST each claim, settle: one worker round."""
    now = datetime.now(UTC) + later
    by_id = {e.endpoint_id: e for e in endpoints}
    claims = claim(
        platform.engine, worker_id="test", now=now, lease=timedelta(seconds=60), limit=100
    )
    settlements = []
    with httpx.Client(trust_env=False) as client:
        for taken in claims:
            sent = send(
                client,
                by_id[taken.endpoint_id],
                issuer_id=taken.issuer_id,
                operations=[taken.operation],
                message=message_id([taken.delivery_id]),
            )
            decision = RetryPolicy().decide(
                sent.outcome,
                attempts=taken.attempts + 1,
                first_attempt_at=taken.first_attempt_at or now,
                now=now,
            )
            settlements.append(Settlement(taken, sent.outcome, decision, now, sent.latency_ms))
    settle(platform.engine, settlements, worker_id="test")
    return len(claims)


class Operator(OperatorClient):
    """The bureau operator, with the notification calls."""

    def deliveries(self, **params: Any) -> httpx.Response:
        return self.http.get("/operator/v1/deliveries", params=params, headers=self.headers)

    def log(self, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = expect_ok(self.deliveries(**params))["deliveries"]
        return found

    def delivery(self, delivery_id: int | str) -> httpx.Response:
        return self.http.get(f"/operator/v1/deliveries/{delivery_id}", headers=self.headers)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(f"/operator/v1{path}", json=body, headers=self.headers)

    def endpoints(self) -> dict[tuple[str, str], dict[str, Any]]:
        answer = expect_ok(self.http.get("/operator/v1/endpoints", headers=self.headers))
        return {(e["issuerId"], e["endpointId"]): e for e in answer["endpoints"]}


ROUTES = [
    ("GET", "/operator/v1/deliveries", None),
    ("GET", "/operator/v1/deliveries/1", None),
    ("POST", "/operator/v1/events:replay", {"eventIds": [1]}),
    ("POST", "/operator/v1/events:recover", {"since": "2026-01-01T00:00:00Z"}),
    ("GET", "/operator/v1/endpoints", None),
    ("POST", f"/operator/v1/issuers/{DEMO}/endpoints/main:enable", None),
    ("POST", f"/operator/v1/issuers/{DEMO}/endpoints/main:ping", None),
]


def test_only_operators_reach_the_notification_api(server: Server, http: httpx.Client) -> None:
    issuer = IssuerClient(http)
    for method, path, body in ROUTES:
        as_issuer = http.request(method, path, json=body, headers=issuer.headers)
        expect_refused(as_issuer, 403, "OPERATOR_ONLY")
        expect_refused(http.request(method, path, json=body), 401, "UNAUTHORIZED")


def test_the_log_shows_each_delivery_with_its_attempts_and_never_its_payload(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform, operator = server.platform, Operator(http)
    endpoints = point_demobank_at(platform, receiver.url)
    [card_id] = order_cards(http, platform, 1)
    receiver.answer(500)
    assert attempt_due(platform, endpoints) == 1
    [pending] = operator.log()
    assert (pending["status"], pending["lastStatusCode"]) == ("PENDING", 500)
    assert attempt_due(platform, endpoints, later=timedelta(minutes=5)) == 1

    [delivered] = operator.log()
    assert set(delivered) == DELIVERY_FIELDS  # metadata only: no operation, no payload
    assert (delivered["cardId"], delivered["issuerId"], delivered["endpointId"]) == (
        card_id,
        DEMO,
        "main",
    )
    assert (delivered["status"], delivered["sequence"], delivered["lastStatusCode"]) == (
        "DELIVERED",
        1,
        204,
    )
    assert delivered["deliveredAt"].endswith("Z")
    assert [a["statusCode"] for a in delivered["attempts"]] == [500, 204]
    for attempt in delivered["attempts"]:
        assert attempt["attemptedAt"].endswith("Z")
        assert attempt["latencyMs"] >= 0
        assert attempt["error"] is None
    assert expect_ok(operator.delivery(delivered["deliveryId"])) == delivered

    unknown = operator.delivery(delivered["deliveryId"] + 1000)
    expect_refused(unknown, 404, "DELIVERY_NOT_FOUND")
    assert unknown.json()["field"] == "deliveryId"
    expect_refused(operator.delivery("first"), 400, "FIELD_INVALID_FORMAT")


def test_a_connection_error_is_logged_as_an_attempt_without_status(
    server: Server, http: httpx.Client, dead: Receiver
) -> None:
    platform, operator = server.platform, Operator(http)
    endpoints = point_demobank_at(platform, dead.url)
    order_cards(http, platform, 1)
    attempt_due(platform, endpoints)
    [delivery] = operator.log()
    [attempt] = delivery["attempts"]
    assert attempt["statusCode"] is None
    assert attempt["error"].startswith("ConnectError")
    assert delivery["lastError"] == attempt["error"]


def test_the_log_filters_by_status_issuer_and_card(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform, operator = server.platform, Operator(http)
    endpoints = point_demobank_at(platform, receiver.url)
    first, second = order_cards(http, platform, 2, moves=(Action.PREPARE,))
    assert attempt_due(platform, endpoints) == 2  # sequence 1 of each; sequence 2 waits

    every = operator.log()
    assert [d["deliveryId"] for d in every] == sorted(
        (d["deliveryId"] for d in every), reverse=True
    )
    assert len(every) == 4
    assert {(d["cardId"], d["sequence"]) for d in operator.log(status="DELIVERED")} == {
        (first, 1),
        (second, 1),
    }
    assert [(d["sequence"], d["status"]) for d in operator.log(cardId=second)] == [
        (2, "PENDING"),
        (1, "DELIVERED"),
    ]
    assert operator.log(status="PENDING", cardId=first)[0]["attempts"] == []
    assert operator.log(issuerId=OTHER) == []
    assert len(operator.log(issuerId=DEMO, limit=3)) == 3
    assert operator.log(limit=1) == every[:1]

    invalid: list[tuple[dict[str, str | int], str]] = [
        ({"status": "LOST"}, "status"),
        ({"limit": 0}, "limit"),
    ]
    for params, field in invalid:
        refused = operator.deliveries(**params)
        assert (refused.status_code, refused.json()["field"]) == (400, field), refused.text
    refused = operator.deliveries(cardId="not a card id")
    assert (refused.status_code, refused.json()["field"]) == (400, "cardId")


def test_replay_and_recover_make_deliveries_due_again(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform, operator = server.platform, Operator(http)
    endpoints = point_demobank_at(platform, receiver.url)
    started = datetime.now(UTC) - timedelta(seconds=1)
    first, second = order_cards(http, platform, 2)
    assert attempt_due(platform, endpoints) == 2
    assert {d["status"] for d in operator.log()} == {"DELIVERED"}

    [replayed] = operator.log(cardId=first)
    answer = operator.post("/events:replay", {"eventIds": [replayed["eventId"]]})
    assert expect_ok(answer) == {"replayed": 1}
    assert [d["status"] for d in operator.log(cardId=first)] == ["PENDING"]
    assert [d["status"] for d in operator.log(cardId=second)] == ["DELIVERED"]
    assert attempt_due(platform, endpoints) == 1
    assert len(receiver.received) == 3

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert expect_ok(operator.post("/events:recover", {"since": future})) == {"replayed": 0}
    since = started.isoformat().replace("+00:00", "Z")
    assert expect_ok(operator.post("/events:recover", {"since": since})) == {"replayed": 2}
    assert {d["status"] for d in operator.log()} == {"PENDING"}
    assert attempt_due(platform, endpoints) == 2
    [first_delivery] = operator.log(cardId=first)
    assert len(first_delivery["attempts"]) == 3


@pytest.mark.parametrize(
    ("path", "body", "code", "field"),
    [
        ("/events:replay", {"eventIds": []}, "FIELD_TOO_FEW_ITEMS", "eventIds"),
        ("/events:replay", {"eventIds": ["one"]}, "FIELD_INVALID_FORMAT", "eventIds[0]"),
        ("/events:replay", {"eventIds": [1], "since": "x"}, "FIELD_UNKNOWN", "since"),
        ("/events:replay", {}, "FIELD_MISSING", "eventIds"),
        ("/events:recover", {"since": "yesterday"}, "FIELD_INVALID_FORMAT", "since"),
        ("/events:recover", {}, "FIELD_MISSING", "since"),
    ],
)
def test_replay_and_recover_name_the_field_they_refuse(
    server: Server, http: httpx.Client, path: str, body: dict[str, Any], code: str, field: str
) -> None:
    refused = Operator(http).post(path, body)
    expect_refused(refused, 400, code)
    assert refused.json()["field"] == field


def test_endpoints_show_their_state_and_backlog_and_can_be_enabled(
    server: Server, http: httpx.Client, receiver: Receiver, dead: Receiver
) -> None:
    platform, operator = server.platform, Operator(http)
    with_password = dead.url.replace("http://", "http://robot:hunter2@")
    endpoints = point_demobank_at(platform, receiver.url, with_password)
    before = operator.endpoints()
    assert set(before) == {(DEMO, "main"), (DEMO, "second")}
    assert before[(DEMO, "second")]["baseUrl"] == dead.url
    assert "whsec_" not in str(before)
    assert "hunter2" not in str(before)
    main = before[(DEMO, "main")]
    assert (main["disabled"], main["pending"], main["failed"], main["gone"]) == (False, 0, 0, 0)
    assert main["baseUrl"] == receiver.url

    order_cards(http, platform, 1, moves=(Action.PREPARE,))
    receiver.answer(410)
    attempt_due(platform, endpoints)  # sequence 1: GONE for main (now disabled), refused for second
    main = operator.endpoints()[(DEMO, "main")]
    assert (main["disabled"], main["pending"], main["failed"], main["gone"]) == (True, 1, 0, 1)
    assert main["disabledAt"].endswith("Z")
    assert "410" in main["disabledReason"]
    assert operator.endpoints()[(DEMO, "second")]["pending"] == 2

    enabled = operator.post(f"/issuers/{DEMO}/endpoints/main:enable")
    assert expect_ok(enabled) == {"issuerId": DEMO, "endpointId": "main", "wasDisabled": True}
    main = operator.endpoints()[(DEMO, "main")]
    assert (main["disabled"], main["disabledAt"], main["pending"]) == (False, None, 1)
    again = expect_ok(operator.post(f"/issuers/{DEMO}/endpoints/main:enable"))
    assert again["wasDisabled"] is False

    unknown = operator.post(f"/issuers/{DEMO}/endpoints/nowhere:enable")
    expect_refused(unknown, 404, "ENDPOINT_NOT_FOUND")
    assert unknown.json()["field"] == "endpointId"
    expect_refused(
        operator.post("/issuers/NOBANK0001/endpoints/main:enable"), 404, "ISSUER_NOT_FOUND"
    )
    expect_refused(
        operator.post(f"/issuers/{OTHER}/endpoints/main:enable"), 404, "ENDPOINT_NOT_FOUND"
    )


def test_a_ping_is_a_signed_empty_notification_and_records_nothing(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform, operator = server.platform, Operator(http)
    [endpoint] = point_demobank_at(platform, receiver.url)
    secret = endpoint.signing_secrets[0]

    result = expect_ok(operator.post(f"/issuers/{DEMO}/endpoints/main:ping"))
    assert (result["ok"], result["statusCode"], result["error"]) == (True, 204, None)
    assert result["latencyMs"] >= 0
    [request] = receiver.received
    assert request.path == NOTIFY_PATH
    assert request.headers["webhook-id"] == result["messageId"]
    assert Webhook(secret).verify(request.body, request.headers) == {"operations": []}

    receiver.answer(Reply(status=503, headers={"Retry-After": "30"}))
    refused = expect_ok(operator.post(f"/issuers/{DEMO}/endpoints/main:ping"))
    assert (refused["ok"], refused["statusCode"], refused["error"]) == (False, 503, None)
    assert refused["messageId"] != result["messageId"]
    assert operator.log() == []
    main = operator.endpoints()[(DEMO, "main")]
    assert (main["disabled"], main["pending"]) == (False, 0)

    unknown = operator.post(f"/issuers/{DEMO}/endpoints/nowhere:ping")
    expect_refused(unknown, 404, "ENDPOINT_NOT_FOUND")
    assert len(receiver.received) == 2


def test_a_ping_to_a_dead_port_reports_the_error(
    server: Server, http: httpx.Client, dead: Receiver
) -> None:
    point_demobank_at(server.platform, dead.url)
    result = expect_ok(Operator(http).post(f"/issuers/{DEMO}/endpoints/main:ping"))
    assert (result["ok"], result["statusCode"]) == (False, None)
    assert result["error"].startswith("ConnectError")


def test_the_openapi_document_describes_the_notification_api(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    paths, schemas = document["paths"], document["components"]["schemas"]
    listing = paths["/operator/v1/deliveries"]["get"]
    assert {"status", "issuerId", "cardId", "limit"} <= {p["name"] for p in listing["parameters"]}
    assert {"200", "400", "401", "403"} <= set(listing["responses"])
    ping = paths["/operator/v1/issuers/{issuerId}/endpoints/{endpointId}:ping"]["post"]
    assert ping["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PingResult"
    )
    assert {"ok", "statusCode", "latencyMs", "error", "messageId"} == set(
        schemas["PingResult"]["properties"]
    )
    assert {"attemptedAt", "latencyMs", "statusCode", "error"} == set(
        schemas["DeliveryAttempt"]["properties"]
    )
    assert "eventIds" in schemas["ReplayRequest"]["properties"]
