"""`GET /banking/v1/issuers/{issuerId}/operations` over real HTTP: the issuer's change feed.

On PostgreSQL a change is shown once every older transaction of the cluster has ended (tests in
other processes included), so reads that expect news poll for a few seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from issuance.contract.feed import ChangeFeed
from issuance.db.models import EventRow
from issuance.domain.orders import Order
from tests.conftest import Server
from tests.factories import (
    DEMO,
    OTHER,
    ActingIssuerClient,
    IssuerClient,
    OperatorClient,
    card_data,
    encrypt,
    expect_ok,
    expect_refused,
    new_card_id,
    order_body,
)

PATIENCE = 10.0  # seconds a read may wait for other processes' transactions to end


def _feed(client: IssuerClient, *, issuer_id: str | None = None, **params: Any) -> httpx.Response:
    path = f"/banking/v1/issuers/{issuer_id or client.issuer_id}/operations"
    return client.http.get(path, params=params, headers=client.headers)


def _read_until(client: IssuerClient, count: int, **params: Any) -> dict[str, Any]:
    """The first page holding `count` operations (or what there is when patience runs out)."""
    deadline = time.monotonic() + PATIENCE
    page = expect_ok(_feed(client, **params))
    while len(page["operations"]) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        page = expect_ok(_feed(client, **params))
    return page


def _payloads(server: Server, issuer_id: str = DEMO) -> list[dict[str, Any]]:
    """What notifications carry: every event's payload, in event order."""
    with server.platform.engine.connect() as connection:
        return list(
            connection.scalars(
                select(EventRow.payload)
                .where(EventRow.issuer_id == issuer_id)
                .order_by(EventRow.event_id)
            )
        )


@pytest.fixture
def issuer(http: httpx.Client) -> ActingIssuerClient:
    return ActingIssuerClient(http)


def _order(issuer: IssuerClient, **card: Any) -> str:
    card_id = new_card_id()
    answer = issuer.order(card_id, order_body(issuer.encrypt(**card)))
    assert answer.status_code == 202, answer.text
    return card_id


def _history(http: httpx.Client, issuer: ActingIssuerClient) -> list[str]:
    """Two cards: one prepared, queued, held and released; one cancelled. Seven changes."""
    operator = OperatorClient(http)
    first, second = _order(issuer), _order(issuer)
    for action in ("prepare", "queue"):
        expect_ok(operator.act(first, action))
    expect_ok(issuer.hold(first))
    expect_ok(issuer.cancel(second))
    expect_ok(issuer.release(first))
    return [first, second]


def test_the_feed_carries_each_change_as_its_notification(
    http: httpx.Client, server: Server, issuer: ActingIssuerClient
) -> None:
    first, second = _history(http, issuer)
    expected = _payloads(server)
    assert len(expected) == 7

    page = _read_until(issuer, 7)

    assert page["operations"] == expected
    assert page["hasMore"] is False
    assert [(o["cardId"], o["sequence"]) for o in page["operations"]] == [
        (first, 1),
        (second, 1),
        (first, 2),
        (first, 3),
        (first, 4),
        (second, 2),
        (first, 5),
    ]
    assert [o for o in page["operations"] if o["cardId"] == first][-1] == issuer.operation(first)
    ChangeFeed.model_validate(page)  # the shared contract reads it


def test_pages_resumed_from_their_cursors_equal_one_read(
    http: httpx.Client, issuer: ActingIssuerClient
) -> None:
    _history(http, issuer)
    whole = _read_until(issuer, 7)

    operations, cursor, more = [], None, True
    while more:
        page = expect_ok(_feed(issuer, limit=3, **({"after": cursor} if cursor else {})))
        operations.extend(page["operations"])
        cursor, more = page["cursor"], page["hasMore"]
        assert len(page["operations"]) == (3 if more else 1)
    assert operations == whole["operations"]
    assert cursor == whole["cursor"]


def test_an_empty_poll_returns_the_cursor_it_was_given(
    http: httpx.Client, issuer: ActingIssuerClient
) -> None:
    empty = expect_ok(_feed(issuer))
    assert (empty["operations"], empty["hasMore"]) == ([], False)
    assert expect_ok(_feed(issuer, after=empty["cursor"]))["cursor"] == empty["cursor"]

    card_id = _order(issuer)
    news = _read_until(issuer, 1, after=empty["cursor"])
    assert [o["cardId"] for o in news["operations"]] == [card_id]
    for _ in range(3):
        again = expect_ok(_feed(issuer, after=news["cursor"]))
        assert again == {"operations": [], "cursor": news["cursor"], "hasMore": False}


def test_an_issuer_sees_only_its_own_changes(
    http: httpx.Client, server: Server, issuer: ActingIssuerClient
) -> None:
    platform = server.platform
    theirs = new_card_id()
    with platform.uow() as uow:  # an order of the other issuer, written as intake does
        order = Order.accept(
            operation_id=f"op-{theirs}", issuer_id=OTHER, card_id=theirs, at=datetime.now(UTC)
        )
        uow.orders.add(order, request={}, fingerprint="f" * 64, sealed=None)
        uow.commit()
    mine = _order(issuer)
    other = IssuerClient(http, OTHER)

    assert [o["cardId"] for o in _read_until(issuer, 1)["operations"]] == [mine]
    their_page = _read_until(other, 1)
    assert [o["cardId"] for o in their_page["operations"]] == [theirs]

    expect_refused(_feed(other, issuer_id=DEMO), 403, "ISSUER_MISMATCH")
    expect_refused(_feed(issuer, issuer_id=OTHER), 403, "ISSUER_MISMATCH")
    expect_refused(http.get(f"/banking/v1/issuers/{DEMO}/operations"), 401, "UNAUTHORIZED")
    foreign = _feed(issuer, after=their_page["cursor"])  # a cursor of the other issuer
    expect_refused(foreign, 400, "INVALID_CURSOR")
    assert foreign.json()["field"] == "after"


@pytest.mark.parametrize("cursor", ["", "garbage!", "eyJ2IjoxfQ", "djEuMC4w", "A" * 300])
def test_a_cursor_not_given_by_the_feed_is_refused_naming_after(
    issuer: IssuerClient, cursor: str
) -> None:
    answer = _feed(issuer, after=cursor)
    expect_refused(answer, 400, "INVALID_CURSOR")
    body = answer.json()
    assert body["field"] == "after"
    assert body["error"].startswith("after:")


@pytest.mark.parametrize("limit", ["0", "1001", "-3", "ten"])
def test_a_limit_outside_1_to_1000_is_refused_naming_it(issuer: IssuerClient, limit: str) -> None:
    answer = _feed(issuer, limit=limit)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "limit"


def test_the_feed_carries_no_card_data(http: httpx.Client, issuer: ActingIssuerClient) -> None:
    card = card_data(cvv2="987", cvv1="654", pvv="4321", name="GRACE HOPPER")
    encrypted = encrypt(card, issuer.jwks)
    card_id = new_card_id()
    assert issuer.order(card_id, order_body(encrypted)).status_code == 202
    expect_ok(OperatorClient(http).act(card_id, "prepare"))

    answer = _feed(issuer)
    for _ in range(int(PATIENCE / 0.05)):
        if len(answer.json()["operations"]) == 2:
            break
        time.sleep(0.05)
        answer = _feed(issuer)
    assert len(answer.json()["operations"]) == 2
    for secret in (card["pan"], card["pan"][-10:], "GRACE", encrypted):
        assert secret not in answer.text
    for name in ("pan", "cvv", "pvv", "track", "encrypteddata", "exp"):  # as keys, any depth
        assert f'"{name}' not in answer.text.lower()


def test_the_feed_is_described_in_openapi(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    route = document["paths"]["/banking/v1/issuers/{issuerId}/operations"]["get"]
    parameters = {p["name"]: p for p in route["parameters"]}
    assert set(parameters) == {"issuerId", "after", "limit"}
    assert parameters["limit"]["schema"]["maximum"] == 1000
    assert parameters["limit"]["schema"]["default"] == 100
    assert {"200", "400", "401", "403"} <= set(route["responses"])
    body = route["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ChangeFeed"}
    feed = document["components"]["schemas"]["ChangeFeed"]
    assert set(feed["required"]) == {"operations", "cursor", "hasMore"}
    assert feed["properties"]["operations"]["items"] == {"$ref": "#/components/schemas/Operation"}
