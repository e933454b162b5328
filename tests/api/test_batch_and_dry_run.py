"""The batch order (1..1000 cards, one result per card) and the dry run extension."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import IssuerClient, luhn_pan, new_card_id, order_body


@pytest.fixture
def issuer(http: httpx.Client) -> IssuerClient:
    return IssuerClient(http)


def _item(issuer: IssuerClient, **overrides: Any) -> dict[str, Any]:
    return {"cardId": new_card_id(), **order_body(issuer.encrypt()), **overrides}


def test_a_batch_answers_one_line_per_card(issuer: IssuerClient) -> None:
    good = [_item(issuer) for _ in range(3)]
    bad_schema = _item(issuer, services={"issuance": "LATER"})
    bad_config = _item(issuer, cardProductId="NOPE")
    response = issuer.order_batch([good[0], bad_schema, good[1], bad_config, good[2]])

    assert response.status_code == 202, response.text
    lines = response.json()["cards"]
    assert [line["cardId"] for line in lines] == [
        c["cardId"] for c in (good[0], bad_schema, good[1], bad_config, good[2])
    ]
    for index in (0, 2, 4):
        assert lines[index]["operationId"]
        assert "errorCode" not in lines[index]
    assert lines[1]["errorCode"] == "FIELD_INVALID_VALUE"
    assert lines[1]["field"] == "cards[1].services.issuance"
    assert lines[3]["errorCode"] == "CARD_PRODUCT_UNKNOWN"
    assert lines[3]["field"] == "cards[3].cardProductId"
    for card in good:
        assert (
            issuer.status(card["cardId"]).json()["operations"][0]["details"]["status"]
            == "CARD_PROD_REQUESTED"
        )
    assert issuer.status(bad_config["cardId"]).status_code == 404


def test_a_batch_retried_replays_each_card(issuer: IssuerClient) -> None:
    cards = [_item(issuer) for _ in range(4)]
    first = issuer.order_batch(cards).json()["cards"]
    again = issuer.order_batch(cards).json()["cards"]
    assert [line["operationId"] for line in again] == [line["operationId"] for line in first]
    assert all(line["replayed"] is True for line in again)
    assert all("replayed" not in line for line in first)


def test_a_batch_item_without_card_id(issuer: IssuerClient) -> None:
    item = order_body(issuer.encrypt())
    line = issuer.order_batch([item]).json()["cards"][0]
    assert line["errorCode"] == "FIELD_MISSING"
    assert line["field"] == "cards[0].cardId"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cards": []}, "cards"),
        ({"cards": "all"}, "cards"),
        ({"cards": [], "extra": 1}, "extra"),
        ([], "cards"),
    ],
)
def test_a_batch_envelope_is_checked(issuer: IssuerClient, body: Any, field: str) -> None:
    path = f"/banking/v1/issuers/{issuer.issuer_id}/physicalCards/operations:production"
    response = issuer.http.post(path, json=body, headers=issuer.headers)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_a_batch_of_more_than_1000_is_refused(issuer: IssuerClient) -> None:
    path = f"/banking/v1/issuers/{issuer.issuer_id}/physicalCards/operations:production"
    response = issuer.http.post(path, json={"cards": [{}] * 1001}, headers=issuer.headers)
    assert response.status_code == 400
    assert response.json()["field"] == "cards"


def test_dry_run_reports_every_problem_and_creates_nothing(issuer: IssuerClient) -> None:
    card_id = new_card_id()
    usa = {"line1": "1 Main St", "zipCode": "10001", "city": "New York", "countryCode": "US"}
    body = order_body(
        issuer.encrypt(pan=luhn_pan("45399100")),
        services={
            "issuance": "RENEWAL",
            "priority": "VIP",
            "delivery": "laposte-lettre",
            "cardCarrier": "WELCOME-LETTER",
        },
        shipment={"type": "INDIVIDUAL", "deliveryAddress": usa},
        packagingConfig={"inserts": ["FLYER-WELCOME"]},
    )
    response = issuer.order(card_id, body, dryRun="true")
    assert response.status_code == 400
    codes = {p["errorCode"] for p in response.json()["problems"]}
    assert codes == {
        "PRIORITY_NOT_ALLOWED",
        "CARD_CARRIER_NOT_ALLOWED",
        "INSERT_NOT_ALLOWED",
        "COUNTRY_NOT_ALLOWED",
        "INDIVIDUAL_ADDRESS_REQUIRED",
    }
    assert issuer.status(card_id).status_code == 404


def test_dry_run_of_a_valid_order(issuer: IssuerClient) -> None:
    card_id = new_card_id()
    response = issuer.order(card_id, order_body(issuer.encrypt()), dryRun="true")
    assert response.status_code == 200
    assert response.json() == {"dryRun": True, "valid": True}
    assert issuer.status(card_id).status_code == 404


def test_dry_run_sees_an_order_in_progress(issuer: IssuerClient) -> None:
    card_id = new_card_id()
    assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
    response = issuer.order(card_id, order_body(issuer.encrypt()), dryRun="true")
    assert response.status_code == 400
    assert response.json()["errorCode"] == "ORDER_IN_PROGRESS"


def test_dry_run_of_a_batch(issuer: IssuerClient) -> None:
    good, bad = _item(issuer), _item(issuer, cardProductId="NOPE")
    response = issuer.order_batch([good, bad], dryRun="true")
    assert response.status_code == 200
    lines = response.json()["cards"]
    assert "errorCode" not in lines[0]
    assert "operationId" not in lines[0]
    assert lines[1]["errorCode"] == "CARD_PRODUCT_UNKNOWN"
    assert issuer.status(good["cardId"]).status_code == 404
