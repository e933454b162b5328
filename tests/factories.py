"""Small builders for test data: card data, encrypted orders, tokens. Keyword args, sane defaults."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from joserfc import jwe
from joserfc.jwk import ECKey
from sqlalchemy import Engine, func, select

from issuance.contract.sensitive import luhn_ok
from issuance.db.models import EventRow
from issuance.domain.validation import OrderSpec
from issuance.services.ordering import PlaceOrder

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


def order_body(encrypted: object, **overrides: Any) -> dict[str, Any]:
    """A valid DEMOBANK01 order for DEMO-DEBIT shipped INDIVIDUAL to France (`encrypted`: the JWE,
    or what a test sends in its place)."""
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


# --- Production and shipment workflow: the issuer's actions, the bureau operator, the journal ---

OPERATOR = ("operator", "sandbox-secret-operator")


def token_headers(http: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    """A bearer header from the client-credentials grant (issuer client or bureau operator)."""
    answer = http.post(
        "/authz/v1/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


class ActingIssuerClient(IssuerClient):
    """An issuer that also uses the order-action extensions and the sandbox scenario control."""

    def _card_path(self, card_id: str, issuer_id: str | None) -> str:
        return f"/banking/v1/issuers/{issuer_id or self.issuer_id}/physicalCards/{card_id}"

    def cancel(self, card_id: str, *, issuer_id: str | None = None) -> httpx.Response:
        path = f"{self._card_path(card_id, issuer_id)}/operations:cancel"
        return self.http.post(path, headers=self.headers)

    def hold(
        self, card_id: str, reason: str = "fraud review", *, issuer_id: str | None = None
    ) -> httpx.Response:
        path = f"{self._card_path(card_id, issuer_id)}/operations:hold"
        return self.http.post(path, json={"reason": reason}, headers=self.headers)

    def release(self, card_id: str, *, issuer_id: str | None = None) -> httpx.Response:
        path = f"{self._card_path(card_id, issuer_id)}/operations:release"
        return self.http.post(path, headers=self.headers)

    def decide_return(
        self, card_id: str, decision: str, *, issuer_id: str | None = None, **extra: Any
    ) -> httpx.Response:
        path = f"{self._card_path(card_id, issuer_id)}/returnDecision"
        return self.http.post(path, json={"decision": decision, **extra}, headers=self.headers)

    def set_scenario(self, card_id: str, scenario: str) -> httpx.Response:
        path = f"/sandbox/v1/issuers/{self.issuer_id}/physicalCards/{card_id}/scenario"
        return self.http.put(path, json={"scenario": scenario}, headers=self.headers)

    def operation(self, card_id: str) -> dict[str, Any]:
        """The card's latest PRODUCE operation from productionStatus (asserting a 200)."""
        answer = self.status(card_id)
        assert answer.status_code == 200, answer.text
        operations: list[dict[str, Any]] = answer.json()["operations"]
        return operations[-1]


class OperatorClient:
    """A bureau operator over real HTTP: `/operator/v1` plus the sandbox clock and simulator."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.headers = token_headers(http, *OPERATOR)

    def orders(
        self, *statuses: str, issuer_id: str | None = None, limit: int | None = None
    ) -> httpx.Response:
        params: dict[str, Any] = {"status": list(statuses)}
        if issuer_id is not None:
            params["issuerId"] = issuer_id
        if limit is not None:
            params["limit"] = limit
        return self.http.get("/operator/v1/orders", params=params, headers=self.headers)

    def act(
        self, card_id: str, action: str, *, issuer_id: str = DEMO, **body: Any
    ) -> httpx.Response:
        path = f"/operator/v1/issuers/{issuer_id}/physicalCards/{card_id}/actions/{action}"
        return self.http.post(path, json=body or None, headers=self.headers)

    def run_batches(self) -> httpx.Response:
        return self.http.post("/operator/v1/batches:run", headers=self.headers)

    def review_sla(self) -> httpx.Response:
        return self.http.post("/operator/v1/sla:review", headers=self.headers)

    def stock(self, issuer_id: str = DEMO) -> dict[str, int]:
        answer = self.http.get(f"/operator/v1/issuers/{issuer_id}/stock", headers=self.headers)
        assert answer.status_code == 200, answer.text
        levels: dict[str, int] = answer.json()
        return levels

    def replenish(self, item: str, quantity: int, *, issuer_id: str = DEMO) -> httpx.Response:
        path = f"/operator/v1/issuers/{issuer_id}/stock/{item}:replenish"
        return self.http.post(path, json={"quantity": quantity}, headers=self.headers)


def advance_clock(http: httpx.Client, seconds: float, *, headers: dict[str, str]) -> str:
    """Move the sandbox time forward (any caller's token); the new sandbox time (ISO 8601)."""
    answer = http.post("/sandbox/v1/clock:advance", json={"seconds": seconds}, headers=headers)
    assert answer.status_code == 200, answer.text
    now: str = answer.json()["now"]
    return now


def tick(http: httpx.Client, *, headers: dict[str, str]) -> int:
    """One simulator round (any caller's token); how many orders it moved."""
    answer = http.post("/sandbox/v1/simulator:tick", headers=headers)
    assert answer.status_code == 200, answer.text
    moved: int = answer.json()["moved"]
    return moved


@dataclass(frozen=True)
class JournalEntry:
    sequence: int
    event_type: str
    payload: dict[str, Any]
    occurred_at: datetime  # UTC

    @property
    def status(self) -> str:
        status: str = self.payload["details"]["status"]
        return status


def count_rows(engine: Engine, model: Any, **where: str) -> int:
    """How many rows of `model` have these column values."""
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    with engine.connect() as connection:
        return int(connection.scalar(query) or 0)


def journal(engine: Engine, card_id: str, *, issuer_id: str = DEMO) -> list[JournalEntry]:
    """The card's events as the database holds them, in sequence order."""
    query = (
        select(EventRow.sequence, EventRow.event_type, EventRow.payload, EventRow.occurred_at)
        .where(EventRow.issuer_id == issuer_id, EventRow.card_id == card_id)
        .order_by(EventRow.sequence)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        JournalEntry(row.sequence, row.event_type, row.payload, _utc(row.occurred_at))
        for row in rows
    ]


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def expect_ok(answer: httpx.Response) -> dict[str, Any]:
    """The JSON of a 200 answer (the assertion shows the body otherwise)."""
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def expect_refused(answer: httpx.Response, status: int, code: str) -> None:
    """The answer is this status with this `errorCode`."""
    assert (answer.status_code, answer.json().get("errorCode")) == (status, code), answer.text


def journal_of(engine: Any, card_id: str) -> list[tuple[int, str, str]]:
    """The card's journal as (sequence, event type, details.status)."""
    return [(e.sequence, e.event_type, e.status) for e in journal(engine, card_id)]


def place_command(
    card_id: str, key: str | None, fingerprint: str = "a" * 64, product: str = "DEMO-DEBIT"
) -> PlaceOrder:
    """A DEMOBANK01 order as the service layer takes it: decrypted, checked, nothing sealed."""
    spec = OrderSpec(
        card_product_id=product,
        issuance="CREATION",
        priority=None,
        delivery="NO_SHIPMENT",
        card_carrier="NO_CARRIER",
        carrier_language=None,
        packaging="NO_PACK",
        inserts=(),
        shipment_type=None,
        delivery_country=None,
        has_individual_address=False,
        has_bulk_container=False,
        card_image=None,
        has_payment_application=True,
        pan="4539910000000002",
        cardholder_named=True,
    )
    return PlaceOrder(DEMO, card_id, key, None, spec, {}, fingerprint, None)
