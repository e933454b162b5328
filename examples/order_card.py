"""Order one card from the sandbox the way an issuer backend does, then read its status.

    python examples/order_card.py [BASE_URL]              # the whole flow
    python examples/order_card.py [BASE_URL] --body-only  # print an order body for curl

1. get a token (client credentials, sandbox issuer DEMOBANK01);
2. fetch the platform's JWKS and encrypt the card data (JWE, ECDH-ES + A256GCM);
3. order the card, then retry the same order to see the idempotent replay;
4. read its production status.
"""

from __future__ import annotations

import json
import sys
import uuid

import httpx
from joserfc import jwe
from joserfc.jwk import ECKey

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
BASE_URL = ARGS[0] if ARGS else "http://127.0.0.1:8000"
BODY_ONLY = "--body-only" in sys.argv
ISSUER_ID = "DEMOBANK01"


def main() -> None:
    with httpx.Client(base_url=BASE_URL, timeout=10) as http:
        token = (
            http.post(
                "/authz/v1/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "demobank01",
                    "client_secret": "sandbox-secret-demobank01",
                },
            )
            .raise_for_status()
            .json()["access_token"]
        )
        http.headers["Authorization"] = f"Bearer {token}"

        key = ECKey.import_key(
            http.get("/.well-known/jwks.json").raise_for_status().json()["keys"][0]
        )
        card_data = {
            "pan": "4539910000000002",
            "exp": "2911",
            "name": "ADA LOVELACE",
            "cvv2": "123",
        }
        encrypted = jwe.encrypt_compact(
            {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid}, json.dumps(card_data), key
        )

        card_id = f"card-{uuid.uuid4().hex[:12]}"
        order = {
            "distributionChannel": "THALES",
            "consumerId": "consumer-42",
            "cardProductId": "DEMO-DEBIT",
            "issuerRequestId": f"req-{card_id}",
            "services": {
                "issuance": "CREATION",
                "delivery": "laposte-lettre",
                "cardCarrier": "WELCOME-LETTER",
            },
            "encryptedData": encrypted,
            "paymentApplication": {
                "config": "VISA-DEBIT",
                "odaKeyIndex": "1",
                "derivationKeyIndex": "1",
            },
            "shipment": {
                "type": "INDIVIDUAL",
                "deliveryAddress": {
                    "firstName": "Ada",
                    "lastName": "Lovelace",
                    "line1": "10 Rue de Rivoli",
                    "zipCode": "75001",
                    "city": "Paris",
                    "countryCode": "FR",
                },
                "individualAddress": {
                    "firstName": "Ada",
                    "lastName": "Lovelace",
                    "line1": "10 Rue de Rivoli",
                    "zipCode": "75001",
                    "city": "Paris",
                    "countryCode": "FR",
                },
            },
        }
        if BODY_ONLY:
            print(json.dumps(order, indent=2))
            return
        path = f"/banking/v1/issuers/{ISSUER_ID}/physicalCards/{card_id}/operations:production"
        first = http.post(path, json=order)
        print("order:", first.status_code, first.json())
        again = http.post(path, json=order)
        print(
            "retry:",
            again.status_code,
            again.json(),
            "replayed:",
            again.headers.get("Idempotent-Replayed"),
        )
        status = http.get(
            f"/banking/v1/issuers/{ISSUER_ID}/physicalCards/{card_id}/productionStatus"
        )
        print("status:", status.status_code, json.dumps(status.json(), indent=2))


if __name__ == "__main__":
    main()
