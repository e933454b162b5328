"""The batch order reviewed against D1's "Order cards": limits, duplicates, idempotency per card
and per request, chunked transactions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from issuance.services import batch_ordering
from tests.factories import ADDRESS, IssuerClient, luhn_pan, new_card_id, order_body


@pytest.fixture
def issuer(http: httpx.Client) -> IssuerClient:
    return IssuerClient(http)


def _item(issuer: IssuerClient, **overrides: Any) -> dict[str, Any]:
    return {"cardId": new_card_id(), **order_body(issuer.encrypt()), **overrides}


def _operations(issuer: IssuerClient, card_id: str) -> list[dict[str, Any]]:
    answer = issuer.status(card_id)
    return [] if answer.status_code == 404 else list(answer.json()["operations"])


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cards per transaction, so a handful of cards crosses chunk boundaries."""
    monkeypatch.setattr(batch_ordering, "CHUNK", 2)


@pytest.mark.usefixtures("small_chunks")
def test_mixed_cards_across_chunks_answer_in_request_order(issuer: IssuerClient) -> None:
    cards = [
        _item(issuer),
        _item(issuer, cardProductId="NOPE"),
        _item(issuer),
        _item(issuer, services={"issuance": "LATER"}),
        _item(issuer),
    ]
    response = issuer.order_batch(cards)

    assert response.status_code == 202, response.text
    assert "Idempotent-Replayed" not in response.headers
    lines = response.json()["cards"]
    assert [line["cardId"] for line in lines] == [card["cardId"] for card in cards]
    assert [line.get("errorCode") for line in lines] == [
        None,
        "CARD_PRODUCT_UNKNOWN",
        None,
        "FIELD_INVALID_VALUE",
        None,
    ]
    assert lines[1]["field"] == "cards[1].cardProductId"
    assert lines[3]["field"] == "cards[3].services.issuance"
    for index in (0, 2, 4):
        assert [op["operationId"] for op in _operations(issuer, cards[index]["cardId"])] == [
            lines[index]["operationId"]
        ]
    assert _operations(issuer, cards[1]["cardId"]) == []


def test_a_card_twice_in_one_request_is_ordered_once(issuer: IssuerClient) -> None:
    first = _item(issuer)
    again = {**_item(issuer), "cardId": first["cardId"]}
    response = issuer.order_batch([first, again])

    lines = response.json()["cards"]
    assert lines[0]["operationId"]
    assert lines[1]["errorCode"] == "DUPLICATE_CARD_ID"
    assert lines[1]["field"] == "cards[1].cardId"
    assert "cards[0]" in lines[1]["error"]
    assert len(_operations(issuer, first["cardId"])) == 1


def test_an_issuer_request_id_twice_in_one_request(issuer: IssuerClient) -> None:
    first = _item(issuer)
    other = _item(issuer, issuerRequestId=first["issuerRequestId"])
    lines = issuer.order_batch([first, other]).json()["cards"]

    assert lines[0]["operationId"]
    assert lines[1]["errorCode"] == "DUPLICATE_ISSUER_REQUEST_ID"
    assert lines[1]["field"] == "cards[1].issuerRequestId"
    assert _operations(issuer, other["cardId"]) == []


def test_1001_cards_are_refused_whole(issuer: IssuerClient) -> None:
    response = issuer.order_batch([_item(issuer)] * 1001)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "FIELD_TOO_MANY_ITEMS"
    assert response.json()["field"] == "cards"


@pytest.mark.usefixtures("small_chunks")
def test_a_whole_request_retried_is_answered_the_same_and_creates_nothing(
    issuer: IssuerClient,
) -> None:
    cards = [_item(issuer, issuerRequestId=None) for _ in range(3)]
    cards.append(_item(issuer, cardProductId="NOPE", issuerRequestId=None))
    first = issuer.order_batch(cards)
    again = issuer.order_batch(cards)

    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    before, after = first.json()["cards"], again.json()["cards"]
    assert [line.get("operationId") for line in after] == [
        line.get("operationId") for line in before
    ]
    assert all(line["replayed"] is True for line in after[:3])
    assert after[3] == before[3]  # the refusal, word for word
    for card in cards[:3]:
        assert len(_operations(issuer, card["cardId"])) == 1


def test_a_retry_that_re_encrypts_the_card_data_is_the_same_request(issuer: IssuerClient) -> None:
    pans = [luhn_pan("45399100") for _ in range(2)]
    cards = [_item(issuer, issuerRequestId=None, encryptedData=issuer.encrypt(pan=p)) for p in pans]
    first = issuer.order_batch(cards).json()["cards"]
    re_encrypted = [
        {**card, "encryptedData": issuer.encrypt(pan=pan)}
        for card, pan in zip(cards, pans, strict=True)
    ]
    assert re_encrypted[0]["encryptedData"] != cards[0]["encryptedData"]

    again = issuer.order_batch(re_encrypted)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [line["operationId"] for line in again.json()["cards"]] == [
        line["operationId"] for line in first
    ]


def test_another_request_with_a_placed_card_is_not_a_replay(issuer: IssuerClient) -> None:
    placed = _item(issuer, issuerRequestId=None)
    issuer.order_batch([placed])
    fresh = _item(issuer)
    response = issuer.order_batch([placed, fresh])

    assert "Idempotent-Replayed" not in response.headers
    lines = response.json()["cards"]
    assert lines[0]["errorCode"] == "ORDER_IN_PROGRESS"
    assert lines[0]["field"] == "cards[0].cardId"
    assert lines[1]["operationId"]


def test_a_card_replays_its_single_order(issuer: IssuerClient) -> None:
    card = _item(issuer)
    body = {k: v for k, v in card.items() if k != "cardId"}
    single = issuer.order(card["cardId"], body)
    assert single.status_code == 202

    lines = issuer.order_batch([card, _item(issuer)]).json()["cards"]
    assert lines[0] == {
        "cardId": card["cardId"],
        "operationId": single.json()["operationId"],
        "replayed": True,
    }
    assert "replayed" not in lines[1]


def test_a_card_in_progress_with_another_key_is_refused(issuer: IssuerClient) -> None:
    card = _item(issuer)
    issuer.order_batch([card])
    lines = issuer.order_batch([{**card, "issuerRequestId": "another-key-1"}]).json()["cards"]
    assert lines[0]["errorCode"] == "ORDER_IN_PROGRESS"
    assert len(_operations(issuer, card["cardId"])) == 1


def test_a_key_reused_for_another_card_is_refused(issuer: IssuerClient) -> None:
    card = _item(issuer)
    issuer.order_batch([card])
    reused = _item(issuer, issuerRequestId=card["issuerRequestId"])
    lines = issuer.order_batch([reused]).json()["cards"]
    assert lines[0]["errorCode"] == "IDEMPOTENCY_KEY_REUSED"
    assert lines[0]["field"] == "cards[0].issuerRequestId"


def test_a_batch_of_1000_cards(issuer: IssuerClient) -> None:
    encrypted = issuer.encrypt()  # one JWE for all: the cards differ by cardId and key
    cards = [{"cardId": new_card_id(), **order_body(encrypted)} for _ in range(1000)]
    path = f"/banking/v1/issuers/{issuer.issuer_id}/physicalCards/operations:production"
    answer = issuer.http.post(path, json={"cards": cards}, headers=issuer.headers, timeout=300)
    lines = answer.json()["cards"]
    assert sum(1 for line in lines if line.get("operationId")) == 1000
    assert len({line["operationId"] for line in lines}) == 1000


@pytest.mark.parametrize("keyed", [True, False])
def test_identical_batches_racing_order_each_card_once(issuer: IssuerClient, keyed: bool) -> None:
    cards = [_item(issuer) if keyed else _item(issuer, issuerRequestId=None) for _ in range(6)]
    path = f"/banking/v1/issuers/{issuer.issuer_id}/physicalCards/operations:production"

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=str(issuer.http.base_url), timeout=120) as own:
            return own.post(path, json={"cards": cards}, headers=issuer.headers)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))

    assert [answer.status_code for answer in answers] == [202] * 4, [a.text for a in answers]
    for index, card in enumerate(cards):
        operations = _operations(issuer, card["cardId"])
        assert len(operations) == 1
        for answer in answers:
            line = answer.json()["cards"][index]
            assert line.get("operationId") == operations[0]["operationId"] or line["errorCode"] in {
                "ORDER_IN_PROGRESS",
                "CONCURRENT_REQUEST",
            }, line


def test_cards_for_a_bulk_container_join_it_beside_individual_cards(issuer: IssuerClient) -> None:
    """Joining a container is the per-card path's: such a chunk is staged card by card."""
    box = f"box-{new_card_id()}"
    boxed = [
        _item(
            issuer,
            services={"issuance": "CREATION", "delivery": "dhl-branch"},
            shipment={"type": "BULK", "groupId": box, "deliveryAddress": dict(ADDRESS)},
        )
        for _ in range(2)
    ]
    cards = [boxed[0], _item(issuer), boxed[1]]

    lines = issuer.order_batch(cards).json()["cards"]

    assert all(line.get("operationId") for line in lines), lines
    for card in cards:
        (operation,) = _operations(issuer, card["cardId"])
        container = operation.get("details", {}).get("container")
        assert (container or {}).get("groupId") == (box if card in boxed else None)
