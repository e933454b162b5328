"""Small builders for test data: card data, encrypted orders, tokens. Keyword args, sane defaults."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import httpx
from joserfc import jwe
from joserfc.jwk import ECKey

from issuance.contract.sensitive import luhn_ok

DEMO = "DEMOBANK01"
OTHER = "OTHERBNK02"
SECRETS = {
    DEMO: ("demobank01", "sandbox-secret-demobank01"),
    OTHER: ("otherbnk02", "sandbox-secret-otherbnk02"),
}


def luhn_pan(prefix: str, length: int = 16) -> str:
    """A Luhn-valid PAN starting with `prefix`, the rest random-ish but deterministic enough."""
    body = prefix + uuid.uuid4().int.__str__()[: length - len(prefix) - 1]
    return next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))


def card_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "pan": luhn_pan("45399100"),
        "exp": "2911",
        "name": "ADA LOVELACE",
        "cvv2": "123",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def encrypt(data: dict[str, Any], jwks: dict[str, Any]) -> str:
    key = ECKey.import_key(jwks["keys"][0])
    return jwe.encrypt_compact(
        {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid}, json.dumps(data), key
    )


ADDRESS = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "line1": "10 Rue de Rivoli",
    "zipCode": "75001",
    "city": "Paris",
    "countryCode": "FR",
}


def order_body(encrypted: str, **overrides: Any) -> dict[str, Any]:
    """A valid DEMOBANK01 order for DEMO-DEBIT shipped INDIVIDUAL to France."""
    body: dict[str, Any] = {
        "distributionChannel": "THALES",
        "consumerId": "consumer-1",
        "cardProductId": "DEMO-DEBIT",
        "issuerRequestId": f"req-{uuid.uuid4().hex}",
        "services": {"issuance": "CREATION", "delivery": "laposte-lettre"},
        "encryptedData": encrypted,
        "paymentApplication": {
            "config": "VISA-DEBIT",
            "odaKeyIndex": "1",
            "derivationKeyIndex": "2",
        },
        "shipment": {
            "type": "INDIVIDUAL",
            "deliveryAddress": dict(ADDRESS),
            "individualAddress": dict(ADDRESS),
        },
    }
    body.update(copy.deepcopy(overrides))
    return {k: v for k, v in body.items() if v is not None}


def new_card_id() -> str:
    return f"card-{uuid.uuid4().hex[:16]}"


class IssuerClient:
    """An issuer backend's view of the API over real HTTP: token, JWKS, order, status."""

    def __init__(self, http: httpx.Client, issuer_id: str = DEMO) -> None:
        self.http = http
        self.issuer_id = issuer_id
        client_id, secret = SECRETS[issuer_id]
        answer = http.post(
            "/authz/v1/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        assert answer.status_code == 200, answer.text
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        self.jwks = http.get("/.well-known/jwks.json").json()

    def encrypt(self, **card: Any) -> str:
        return encrypt(card_data(**card), self.jwks)

    def order(
        self, card_id: str, body: dict[str, Any], *, issuer_id: str | None = None, **params: Any
    ) -> httpx.Response:
        path = f"/banking/v1/issuers/{issuer_id or self.issuer_id}/physicalCards/{card_id}/operations:production"
        return self.http.post(path, json=body, headers=self.headers, params=params)

    def order_batch(self, cards: list[dict[str, Any]], **params: Any) -> httpx.Response:
        path = f"/banking/v1/issuers/{self.issuer_id}/physicalCards/operations:production"
        return self.http.post(path, json={"cards": cards}, headers=self.headers, params=params)

    def status(self, card_id: str, *, issuer_id: str | None = None) -> httpx.Response:
        path = f"/banking/v1/issuers/{issuer_id or self.issuer_id}/physicalCards/{card_id}/productionStatus"
        return self.http.get(path, headers=self.headers)
