"""Ordering one card over real HTTP, on SQLite and PostgreSQL: the D1 happy paths."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from issuance.services.bulk_placing import BulkIntake
from tests.conftest import Server
from tests.factories import ADDRESS, DEMO, OTHER, IssuerClient, luhn_pan, new_card_id, order_body


@pytest.fixture
def issuer(http: httpx.Client) -> IssuerClient:
    return IssuerClient(http)


def _accepted(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    assert response.headers.get("Idempotent-Replayed") is None
    operation_id: str = response.json()["operationId"]
    return operation_id


def test_a_card_ordered_is_requested_and_pending(issuer: IssuerClient) -> None:
    card_id = new_card_id()
    body = order_body(issuer.encrypt())

    operation_id = _accepted(issuer.order(card_id, body))

    status = issuer.status(card_id)
    assert status.status_code == 200
    [operation] = status.json()["operations"]
    assert operation["operationId"] == operation_id
    assert operation["operation"] == "PRODUCE"
    assert operation["status"] == "PENDING"
    assert operation["details"]["status"] == "CARD_PROD_REQUESTED"
    assert operation["cardId"] == card_id
    assert operation["issuerRequestId"] == body["issuerRequestId"]
    assert operation["details"]["productionSite"] == "PC-PARIS"
    assert operation["sequence"] == 1
    assert operation["startTime"].endswith("Z")
    assert "endTime" not in operation


FULL_OPTIONS: dict[str, dict[str, Any]] = {
    "graphical": {
        "cardDesign": {
            "cardImage": "DEBIT-GREEN",
            "images": ["logo-1"],
            "customLines": ["Debit"],
            "memberId": "M-42",
        },
    },
    "carrier_and_packaging": {
        "services": {
            "issuance": "CREATION",
            "priority": "URGENT",
            "delivery": "chronopost-express",
            "cardCarrier": "WELCOME-LETTER",
            "packaging": "STANDARD-ENVELOPE",
            "pinMailer": True,
            "alphaCard": False,
        },
        "cardCarrierConfig": {"language": "fr", "images": ["banner"], "customLines": ["Bienvenue"]},
        "packagingConfig": {"inserts": ["FLYER-WELCOME", "TERMS-V3"]},
    },
    "bulk_shipment": {
        "services": {"issuance": "CREATION", "delivery": "dhl-branch"},
        "shipment": {
            "type": "BULK",
            "groupId": "container-001",
            "orderId": "dispatch-2026-11-25",
            "deliveryAddress": {
                "companyName": "Demo Bank Branch 12",
                "line1": "3 Place Bellecour",
                "zipCode": "69002",
                "city": "Lyon",
                "countryCode": "FR",
            },
        },
    },
    "replacement_with_old_card": {
        "services": {
            "issuance": "REPLACEMENT",
            "delivery": "laposte-lettre",
            "cardCarrier": "WELCOME-LETTER",
        },
        "oldCardId": "card-lost-0001",
        "state": "ACTIVE",
    },
    "renewal_carrier": {
        "services": {
            "issuance": "RENEWAL",
            "delivery": "laposte-lettre",
            "cardCarrier": "RENEWAL-LETTER",
        },
    },
    "no_shipment": {"services": {"issuance": "CREATION"}},
}


@pytest.mark.parametrize("options", FULL_OPTIONS.values(), ids=FULL_OPTIONS.keys())
def test_every_optional_block_is_accepted(issuer: IssuerClient, options: dict[str, Any]) -> None:
    body = order_body(issuer.encrypt(secondName="COUNTESS", encodedName="LOVELACE/ADA"), **options)
    _accepted(issuer.order(new_card_id(), body))


def test_magstripe_and_chip_data_inside_the_jwe_are_accepted(issuer: IssuerClient) -> None:
    pan = luhn_pan("45399100")
    encrypted = issuer.encrypt(
        pan=pan,
        cvv1="456",
        pvv="1234",
        panSequenceNumber="01",
        effectiveDate="2611",
        paymentAccountReference="V0010013019165329681113390521",
        trackData={
            "track1": f"B{pan}^LOVELACE/ADA^29112010000000000000",
            "track2": f"{pan}=29112010000000000",
        },
    )
    body = order_body(
        encrypted,
        paymentApplication={
            "config": "VISA-DEBIT",
            "odaKeyIndex": 1,
            "derivationKeyIndex": 2,
            "cvKeyIndex": 3,
            "pvKeyIndex": 4,
        },
    )
    _accepted(issuer.order(new_card_id(), body))


def test_a_magstripe_only_product_needs_no_payment_application(issuer: IssuerClient) -> None:
    body = order_body(
        issuer.encrypt(pan=luhn_pan("45399200")),
        cardProductId="DEMO-PREPAID",
        paymentApplication=None,
    )
    _accepted(issuer.order(new_card_id(), body))


def test_the_other_issuer_orders_its_own_products(http: httpx.Client) -> None:
    other = IssuerClient(http, OTHER)
    us_address = {**ADDRESS, "city": "Newark", "zipCode": "07102", "countryCode": "US"}
    body = order_body(
        other.encrypt(pan=luhn_pan("222300")),
        cardProductId="OTHER-CLASSIC",
        services={
            "issuance": "CREATION",
            "delivery": "usps-first-class",
            "cardCarrier": "US-CARRIER",
        },
        shipment={
            "type": "INDIVIDUAL",
            "deliveryAddress": us_address,
            "individualAddress": us_address,
        },
    )
    _accepted(other.order(new_card_id(), body))


def test_cards_of_another_issuer_are_never_visible(http: httpx.Client) -> None:
    demo, other = IssuerClient(http, DEMO), IssuerClient(http, OTHER)
    card_id = new_card_id()
    _accepted(demo.order(card_id, order_body(demo.encrypt())))

    through_other_path = other.status(card_id, issuer_id=DEMO)
    assert through_other_path.status_code == 403
    assert through_other_path.json()["errorCode"] == "ISSUER_MISMATCH"
    in_own_space = other.status(card_id)
    assert in_own_space.status_code == 404
    assert in_own_space.json()["errorCode"] == "CARD_NOT_FOUND"
    ordering_for_demo = other.order(new_card_id(), order_body(other.encrypt()), issuer_id=DEMO)
    assert ordering_for_demo.status_code == 403


def test_the_same_card_id_in_two_issuers_is_two_cards(http: httpx.Client) -> None:
    demo, other = IssuerClient(http, DEMO), IssuerClient(http, OTHER)
    card_id = new_card_id()
    _accepted(demo.order(card_id, order_body(demo.encrypt())))
    us = {**ADDRESS, "countryCode": "US"}
    other_body = order_body(
        other.encrypt(pan=luhn_pan("414720")),
        cardProductId="OTHER-GOLD",
        services={"issuance": "CREATION", "delivery": "usps-first-class"},
        shipment={"type": "INDIVIDUAL", "deliveryAddress": us, "individualAddress": us},
    )
    _accepted(other.order(card_id, other_body))
    assert len(demo.status(card_id).json()["operations"]) == 1
    assert len(other.status(card_id).json()["operations"]) == 1


def test_lowercase_status_path_of_the_d1_guide_answers_too(issuer: IssuerClient) -> None:
    card_id = new_card_id()
    _accepted(issuer.order(card_id, order_body(issuer.encrypt())))
    response = issuer.http.get(
        f"/banking/v1/issuers/{DEMO}/physicalcards/{card_id}/productionstatus",
        headers=issuer.headers,
    )
    assert response.status_code == 200
    assert response.json()["operations"][0]["cardId"] == card_id


def test_correlation_id_is_echoed_or_created(issuer: IssuerClient) -> None:
    given = issuer.http.get("/health", headers={"x-correlation-id": "abc-123_XYZ"})
    assert given.headers["x-correlation-id"] == "abc-123_XYZ"
    created = issuer.http.get("/health")
    assert len(created.headers["x-correlation-id"]) == 32
    refused = issuer.http.get("/health", headers={"x-correlation-id": "has spaces!"})
    assert refused.status_code == 400
    assert refused.json()["field"] == "x-correlation-id"


def test_a_single_card_order_commits_on_the_serving_loop(
    server: Server, http: httpx.Client
) -> None:
    """Not through the committer thread's intakes (db/intake_on_loop.py), on both databases."""
    ordering = server.platform.ordering
    through_committer: list[int] = []
    committer_bulk = ordering.bulk
    assert committer_bulk is not None

    def recorded() -> BulkIntake:
        through_committer.append(1)
        return committer_bulk()

    ordering.bulk = recorded
    issuer = IssuerClient(http)
    try:
        _accepted(issuer.order(new_card_id(), order_body(issuer.encrypt())))
    finally:
        ordering.bulk = committer_bulk
    assert through_committer == []
    assert ordering.grouped >= 1
