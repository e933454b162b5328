"""BULK containers over real HTTP, on both databases: manifest, shipping, tracking, the branch.

A second-level container (`orderId`) holds two first-level containers (`groupId`), as D1's
shipment guide nests them; the first-level container is what the operator ships and tracks.
Each card move is checked in productionStatus and in the journal (one event per card).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from issuance.domain.errors import DomainError
from issuance.domain.orders import Order
from issuance.services import containers as container_service
from tests.conftest import Server
from tests.factories import (
    ADDRESS,
    DEMO,
    OTHER,
    ActingIssuerClient,
    IssuerClient,
    OperatorClient,
    advance_clock,
    expect_ok,
    expect_refused,
    journal,
    new_card_id,
    order_body,
    tick,
)

PRODUCTION = ("prepare", "queue", "start", "complete")


class Containers:
    """The operator's container calls."""

    def __init__(self, operator: OperatorClient, issuer_id: str = DEMO) -> None:
        self.http, self.headers = operator.http, operator.headers
        self.base = f"/operator/v1/issuers/{issuer_id}/containers"

    def list(self, **params: Any) -> httpx.Response:
        return self.http.get(self.base, params=params, headers=self.headers)

    def show(self, group_id: str) -> httpx.Response:
        return self.http.get(f"{self.base}/{group_id}", headers=self.headers)

    def post(self, group_id: str, verb: str, **body: Any) -> httpx.Response:
        path = f"{self.base}/{group_id}:{verb}"
        return self.http.post(path, json=body or None, headers=self.headers)

    def hand_over(self, group_id: str, card_id: str) -> httpx.Response:
        path = f"{self.base}/{group_id}/cards/{card_id}:handOver"
        return self.http.post(path, headers=self.headers)


@pytest.fixture
def issuer(http: httpx.Client) -> ActingIssuerClient:
    return ActingIssuerClient(http)


@pytest.fixture
def operator(http: httpx.Client) -> OperatorClient:
    return OperatorClient(http)


@pytest.fixture
def containers(operator: OperatorClient) -> Containers:
    return Containers(operator)


def _bulk_body(issuer: IssuerClient, group_id: str, order_id: str | None) -> dict[str, Any]:
    shipment = {"type": "BULK", "groupId": group_id, "deliveryAddress": dict(ADDRESS)}
    if order_id is not None:
        shipment["orderId"] = order_id
    return order_body(
        issuer.encrypt(),
        services={"issuance": "CREATION", "delivery": "dhl-branch"},
        shipment=shipment,
    )


def _order_bulk(issuer: IssuerClient, group_id: str, order_id: str | None, count: int) -> list[str]:
    cards = []
    for _ in range(count):
        card_id = new_card_id()
        answer = issuer.order(card_id, _bulk_body(issuer, group_id, order_id))
        assert answer.status_code == 202, answer.text
        cards.append(card_id)
    return sorted(cards)


def _produce(operator: OperatorClient, *card_ids: str) -> None:
    for card_id in card_ids:
        for action in PRODUCTION:
            expect_ok(operator.act(card_id, action))


def _ids() -> tuple[str, str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"box-a-{suffix}", f"box-b-{suffix}", f"dispatch-{suffix}"


def test_a_second_level_container_lists_its_two_containers_and_their_manifests(
    issuer: ActingIssuerClient, containers: Containers
) -> None:
    box_a, box_b, dispatch = _ids()
    cards_a = _order_bulk(issuer, box_a, dispatch, 3)
    cards_b = _order_bulk(issuer, box_b, dispatch, 2)
    _order_bulk(issuer, f"{box_a}-elsewhere", None, 1)

    listed = expect_ok(containers.list(orderId=dispatch))["containers"]
    assert sorted((c["groupId"], c["orderId"], c["status"], c["cardCount"]) for c in listed) == [
        (box_a, dispatch, "OPEN", 3),
        (box_b, dispatch, "OPEN", 2),
    ]
    shown = expect_ok(containers.show(box_a))
    assert (shown["groupId"], shown["orderId"], shown["status"], shown["cardCount"]) == (
        box_a,
        dispatch,
        "OPEN",
        3,
    )
    assert [c["cardId"] for c in shown["cards"]] == cards_a
    assert {(c["status"], c["productionStatus"]) for c in shown["cards"]} == {
        ("PENDING", "CARD_PROD_REQUESTED")
    }
    assert [c["cardId"] for c in expect_ok(containers.show(box_b))["cards"]] == cards_b
    operation = issuer.operation(cards_a[0])
    assert operation["details"]["container"] == {
        "groupId": box_a,
        "orderId": dispatch,
        "status": "OPEN",
    }
    assert {c["groupId"] for c in expect_ok(containers.list(status="OPEN"))["containers"]} >= {
        box_a,
        box_b,
    }
    assert expect_ok(containers.list(status="IN_TRANSIT"))["containers"] == []


def test_shipping_a_container_ships_its_cards_with_its_tracking_and_the_branch_hands_them_over(
    server: Server, issuer: ActingIssuerClient, operator: OperatorClient, containers: Containers
) -> None:
    box_a, box_b, dispatch = _ids()
    cards = _order_bulk(issuer, box_a, dispatch, 3)
    (other_box_card,) = _order_bulk(issuer, box_b, dispatch, 1)
    _produce(operator, *cards[:2])

    not_ready = containers.post(box_a, "ship", carrier="dhl", trackingNumber="JD0001")
    expect_refused(not_ready, 409, "CONTAINER_NOT_READY")
    assert not_ready.json()["field"] == "cards"
    assert cards[2] in not_ready.json()["error"]
    assert expect_ok(containers.show(box_a))["status"] == "OPEN"
    _produce(operator, cards[2])
    expect_refused(operator.act(cards[0], "ship", carrier="dhl"), 409, "CARD_IN_CONTAINER")

    tracking = {
        "carrier": "dhl",
        "trackingNumber": "JD0001",
        "trackingUrl": "https://t.example/JD0001",
    }
    shipped = expect_ok(containers.post(box_a, "ship", **tracking))
    assert (shipped["status"], shipped["trackingNumber"], sorted(shipped["movedCardIds"])) == (
        "IN_TRANSIT",
        "JD0001",
        cards,
    )
    container = {
        "groupId": box_a,
        "orderId": dispatch,
        "status": "IN_TRANSIT",
        "carrier": "dhl",
        "trackingNumber": "JD0001",
    }
    for card_id in cards:
        operation = issuer.operation(card_id)
        assert (operation["status"], operation["details"]["status"]) == (
            "SUCCESSFUL",
            "CARD_SHIPPED",
        )
        assert operation["details"]["shipment"] == {**tracking, "status": "IN_TRANSIT"}
        assert operation["details"]["container"] == container
        last = journal(server.platform.engine, card_id)[-1]
        assert (last.event_type, last.payload["details"]["container"]) == (
            "order.status_changed",
            container,
        )
    assert issuer.operation(other_box_card)["details"]["container"]["status"] == "OPEN"
    expect_refused(
        containers.post(box_a, "ship", carrier="dhl"), 409, "ILLEGAL_CONTAINER_TRANSITION"
    )
    expect_refused(containers.post(box_b, "receive"), 409, "ILLEGAL_CONTAINER_TRANSITION")
    expect_refused(containers.hand_over(box_a, cards[0]), 409, "ILLEGAL_CONTAINER_TRANSITION")

    received = expect_ok(containers.post(box_a, "receive", message="counted at the branch"))
    assert (received["status"], received["message"]) == (
        "RECEIVED_AT_BRANCH",
        "counted at the branch",
    )
    assert "receivedAt" in received
    for card_id in cards:
        details = issuer.operation(card_id)["details"]
        assert (details["shipment"]["status"], details["container"]["status"]) == (
            "DELIVERED",
            "RECEIVED_AT_BRANCH",
        )

    handed = expect_ok(containers.hand_over(box_a, cards[1]))
    assert "handedToCardholderAt" in handed["details"]["container"]
    expect_refused(containers.hand_over(box_a, cards[1]), 409, "ILLEGAL_CONTAINER_TRANSITION")
    expect_refused(containers.hand_over(box_a, other_box_card), 404, "CARD_NOT_IN_CONTAINER")
    manifest = {c["cardId"]: c for c in expect_ok(containers.show(box_a))["cards"]}
    assert [card_id for card_id, c in manifest.items() if "handedToCardholderAt" in c] == [cards[1]]
    assert {c["shipmentStatus"] for c in manifest.values()} == {"DELIVERED"}

    events = [
        (e.event_type, e.payload["details"]["shipment"]["status"])
        for e in journal(server.platform.engine, cards[1])[-3:]
    ]
    assert events == [
        ("order.status_changed", "IN_TRANSIT"),
        ("order.shipment_updated", "DELIVERED"),
        ("order.handed_to_cardholder", "DELIVERED"),
    ]
    trail = operator.http.get(
        "/operator/v1/audit",
        params={"issuerId": DEMO, "cardId": cards[1]},
        headers=operator.headers,
    )
    assert [e["action"] for e in expect_ok(trail)["entries"][:3]] == [
        "order.hand_over",
        "container.receive",
        "container.ship",
    ]


def test_carrier_reports_move_each_card_and_a_returned_container_ships_again(
    server: Server, issuer: ActingIssuerClient, operator: OperatorClient, containers: Containers
) -> None:
    box_a, _box_b, dispatch = _ids()
    cards = _order_bulk(issuer, box_a, dispatch, 2)
    _produce(operator, *cards)
    expect_ok(containers.post(box_a, "ship", carrier="dhl", trackingNumber="JD0002"))

    expect_refused(
        containers.post(box_a, "track", status="RECEIVED_AT_BRANCH"), 400, "FIELD_INVALID_FORMAT"
    )
    for status in ("UNDELIVERABLE", "RETURNED"):
        moved = expect_ok(containers.post(box_a, "track", status=status, message="branch closed"))
        assert (moved["status"], sorted(moved["movedCardIds"])) == (status, cards)
        for card_id in cards:
            shipment = issuer.operation(card_id)["details"]["shipment"]
            assert (shipment["status"], shipment["message"]) == (status, "branch closed")
    expect_refused(operator.act(cards[0], "deliver"), 409, "CARD_IN_CONTAINER")
    expect_refused(issuer.decide_return(cards[0], "RESHIP"), 409, "CARD_IN_CONTAINER")
    expect_ok(issuer.decide_return(cards[1], "DESTROY"))

    again = expect_ok(containers.post(box_a, "ship", carrier="ups", trackingNumber="1Z0003"))
    assert (again["status"], again["movedCardIds"]) == ("IN_TRANSIT", [cards[0]])
    shipment = issuer.operation(cards[0])["details"]["shipment"]
    assert (shipment["status"], shipment["carrier"], shipment["trackingNumber"]) == (
        "IN_TRANSIT",
        "ups",
        "1Z0003",
    )
    assert issuer.operation(cards[1])["details"]["shipment"]["status"] == "DESTROYED"
    statuses = [
        e.payload["details"]["shipment"]["status"]
        for e in journal(server.platform.engine, cards[0])[-4:]
    ]
    assert statuses == ["IN_TRANSIT", "UNDELIVERABLE", "RETURNED", "IN_TRANSIT"]


def test_a_shipped_container_takes_no_new_card_and_keeps_its_second_level_container(
    issuer: ActingIssuerClient, operator: OperatorClient, containers: Containers
) -> None:
    box_a, _box_b, dispatch = _ids()
    cards = _order_bulk(issuer, box_a, dispatch, 1)
    mismatch = issuer.order(new_card_id(), _bulk_body(issuer, box_a, "another-dispatch"))
    expect_refused(mismatch, 400, "BULK_CONTAINER_MISMATCH")
    assert mismatch.json()["field"] == "shipment.orderId"
    _produce(operator, *cards)
    expect_ok(containers.post(box_a, "ship", carrier="dhl"))
    late = issuer.order(new_card_id(), _bulk_body(issuer, box_a, dispatch))
    expect_refused(late, 409, "CONTAINER_ALREADY_SHIPPED")
    assert late.json()["field"] == "shipment.groupId"
    assert expect_ok(containers.show(box_a))["cardCount"] == 1
    for group, second_level, code in (
        (box_a, dispatch, "CONTAINER_ALREADY_SHIPPED"),  # the dry run says what placing would
        (box_a, "another-dispatch", "BULK_CONTAINER_MISMATCH"),
    ):
        body = _bulk_body(issuer, group, second_level)
        dry = issuer.order(new_card_id(), body, dryRun="true")
        assert dry.status_code == 400, dry.text
        assert code in [p["errorCode"] for p in dry.json().get("problems", [dry.json()])]
    new_box = _ids()[0]
    fresh = issuer.order(new_card_id(), _bulk_body(issuer, new_box, None), dryRun="true")
    assert fresh.status_code == 200, fresh.text  # a new container is fine, and not created
    assert containers.show(new_box).status_code == 404


def test_unknown_containers_and_other_issuers_get_nothing(
    http: httpx.Client, issuer: ActingIssuerClient, operator: OperatorClient, containers: Containers
) -> None:
    box_a, _box_b, dispatch = _ids()
    (card_id,) = _order_bulk(issuer, box_a, dispatch, 1)
    for answer in (
        containers.show("no-such-box"),
        containers.post("no-such-box", "ship", carrier="dhl"),
        containers.post("no-such-box", "receive"),
        containers.hand_over("no-such-box", card_id),
    ):
        expect_refused(answer, 404, "CONTAINER_NOT_FOUND")
        assert answer.json()["field"] == "groupId"

    elsewhere = Containers(operator, OTHER)
    expect_refused(elsewhere.show(box_a), 404, "CONTAINER_NOT_FOUND")
    expect_refused(elsewhere.post(box_a, "ship", carrier="dhl"), 404, "CONTAINER_NOT_FOUND")
    assert expect_ok(elsewhere.list())["containers"] == []

    own_list = expect_ok(http.get(f"/banking/v1/issuers/{DEMO}/containers", headers=issuer.headers))
    assert box_a in {c["groupId"] for c in own_list["containers"]}
    other_list = http.get(
        f"/banking/v1/issuers/{OTHER}/containers", headers=IssuerClient(http, OTHER).headers
    )
    assert box_a not in {c["groupId"] for c in expect_ok(other_list)["containers"]}
    own = expect_ok(
        http.get(f"/banking/v1/issuers/{DEMO}/containers/{box_a}", headers=issuer.headers)
    )
    assert [c["cardId"] for c in own["cards"]] == [card_id]
    other = IssuerClient(http, OTHER)
    expect_refused(
        http.get(f"/banking/v1/issuers/{DEMO}/containers/{box_a}", headers=other.headers),
        403,
        "ISSUER_MISMATCH",
    )
    expect_refused(
        http.get(f"/banking/v1/issuers/{OTHER}/containers/{box_a}", headers=other.headers),
        404,
        "CONTAINER_NOT_FOUND",
    )
    expect_refused(
        http.get(f"/operator/v1/issuers/{DEMO}/containers", headers=issuer.headers),
        403,
        "OPERATOR_ONLY",
    )
    expect_refused(containers.post(box_a, "ship"), 400, "FIELD_MISSING")
    expect_refused(containers.post(box_a, "track", status="LOST"), 400, "FIELD_INVALID_FORMAT")
    expect_refused(containers.list(status="LOST"), 400, "FIELD_INVALID_VALUE")


def test_the_sandbox_bureau_ships_a_container_once_all_its_cards_are_done_then_the_branch_gets_it(
    http: httpx.Client, server: Server, issuer: ActingIssuerClient, containers: Containers
) -> None:
    box_a, _box_b, dispatch = _ids()
    cards = _order_bulk(issuer, box_a, dispatch, 2)
    seen: list[tuple[str, set[str]]] = []
    for _ in range(12):
        advance_clock(http, 3600, headers=issuer.headers)
        tick(http, headers=issuer.headers)
        shown = expect_ok(containers.show(box_a))
        seen.append((shown["status"], {c["productionStatus"] for c in shown["cards"]}))
        if shown["status"] == "RECEIVED_AT_BRANCH":
            break
    statuses = [status for status, _ in seen]
    assert statuses[-2:] == ["IN_TRANSIT", "RECEIVED_AT_BRANCH"], seen
    assert all(steps == {"CARD_SHIPPED"} for status, steps in seen if status != "OPEN"), seen
    assert statuses[: statuses.index("IN_TRANSIT")] == ["OPEN"] * statuses.index("IN_TRANSIT")
    for card_id in cards:
        details = issuer.operation(card_id)["details"]
        assert details["shipment"]["carrier"] == "dhl"  # dhl-branch's carrier
        assert details["shipment"]["status"] == "DELIVERED"
        assert details["container"]["status"] == "RECEIVED_AT_BRANCH"
        steps = [
            (e.status, e.payload["details"].get("shipment", {}).get("status"))
            for e in journal(server.platform.engine, card_id)
        ]
        assert steps[-3:] == [
            ("CARD_PROD_DONE", None),
            ("CARD_SHIPPED", "IN_TRANSIT"),
            ("CARD_SHIPPED", "DELIVERED"),
        ]


BODY_KEYS = ["carrier", "trackingNumber", "trackingUrl", "status", "message", "x"]
BODY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(BODY_KEYS), children, max_size=4)
    ),
    max_leaves=8,
)


@pytest.fixture
def bulk_box(issuer: ActingIssuerClient) -> str:
    """A container holding one BULK card."""
    box = _ids()[0]
    _order_bulk(issuer, box, None, 1)
    return box


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_container_call_yields_a_server_error(
    containers: Containers, bulk_box: str, data: st.DataObject
) -> None:
    """Whatever the operator sends, to a real container (with a card) or to none, no 500."""
    target = data.draw(st.one_of(st.just(bulk_box), st.just("@"), st.text(min_size=1, max_size=70)))
    verb = data.draw(st.sampled_from(["ship", "track", "receive", "cards/card-1:handOver"]))
    path = f"{containers.base}/{quote(target, safe='')}"
    path += f"/{verb}" if verb.startswith("cards/") else f":{verb}"
    answer = containers.http.post(path, json=data.draw(BODY), headers=containers.headers)
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.json()["errorCode"]
    shown = containers.http.get(
        f"{containers.base}/{quote(target, safe='')}", headers=containers.headers
    )
    assert shown.status_code < 500, shown.text


def test_a_card_placed_while_its_container_ships_is_never_left_behind(
    server: Server, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    """A placement holds the container until it commits: the shipment waits, then sees the card."""
    platform = server.platform
    box, _box_b, _dispatch = _ids()
    cards = _order_bulk(issuer, box, None, 1)
    _produce(operator, *cards)
    outcome: list[str] = []

    def ship_meanwhile() -> None:
        try:
            container_service.ship(
                issuer_id=DEMO,
                group_id=box,
                carrier="dhl",
                tracking_number=None,
                tracking_url=None,
                uow=platform.uow(),
                clock=platform.clock,
            )
            outcome.append("SHIPPED")
        except DomainError as error:
            outcome.append(error.code)

    with platform.uow() as placing:  # a new BULK card for the box, not committed yet
        now = platform.clock()
        ref = container_service.join_container(
            placing, DEMO, {"type": "BULK", "groupId": box}, at=now
        )
        late = Order.accept(
            operation_id=str(uuid.uuid4()),
            issuer_id=DEMO,
            card_id=new_card_id(),
            at=now,
            container=ref,
        )
        placing.orders.add(late, request={}, fingerprint="f" * 64, sealed=None)
        shipping = threading.Thread(target=ship_meanwhile)
        shipping.start()
        shipping.join(timeout=1.0)
        assert shipping.is_alive(), outcome  # it waits for the placement
        placing.commit()
    shipping.join(timeout=30)

    assert outcome == ["CONTAINER_NOT_READY"]
    assert expect_ok(Containers(operator).show(box))["status"] == "OPEN"
