"""The issuer's client for the D1 physical-card API (async, on httpx).

Every method is one logical call: its `issuerRequestId` and `x-correlation-id` are fixed before
the first attempt, and retries (connection errors, 429, 5xx; see `retry.py`) resend the same
bytes. A 401 drops the cached token and tries once more with a new one. Answers are parsed with
the platform's own contract models; refusals raise the typed errors of `errors.py`.

    async with AsyncIssuerClient(url, "DEMOBANK01", ClientSecret("demobank01", secret)) as d1:
        placed = await d1.order_card("card-1", order, card_data={"pan": ..., "exp": "2911"})
        operations = await d1.production_status("card-1")

`IssuerClient` (sync.py) is the same client for code that does not run an event loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx
from joserfc.jwk import ECKey

from issuance.contract.feed import ChangeFeed
from issuance.contract.operations import Operation, Operations
from issuance.contract.orders import (
    MAX_CARDS_PER_BATCH,
    CardItem,
    CardOrderFields,
    CardOrderRequest,
    CardResult,
    CardsOrderResponse,
    OperationAccepted,
)
from issuance.contract.sensitive import unmasked_hex_id
from issuance.kit import http as retrying
from issuance.kit.auth import TOKEN_PATH, Credentials, Token, TokenCache
from issuance.kit.errors import ApiError, ChangeFeedUnavailable, UnexpectedResponse, api_error
from issuance.kit.models import Jwks, OrderPlaced, TokenAnswer, parse
from issuance.kit.orders import CardData, encrypt_card_data, prepare, wire
from issuance.kit.retry import RetryPolicy

JWKS_PATH = "/.well-known/jwks.json"
JWKS_TTL = 3600.0  # seconds a fetched encryption key is used before the JWKS is read again
DEFAULT_TOKEN_LIFETIME = 300.0  # seconds, when the token answer gives no `expires_in`


class AsyncIssuerClient:
    """Orders cards and reads their state for one issuer."""

    def __init__(
        self,
        base_url: str,
        issuer_id: str,
        credentials: Credentials,
        *,
        encryption_key: ECKey | dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,  # seconds per attempt
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`encryption_key` is the platform's public JWK; without it the JWKS is fetched."""
        self.issuer_id = issuer_id
        self._credentials = credentials
        self._retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)
        self._tokens = TokenCache(self._fetch_token)
        self._key: ECKey | None = (
            ECKey.import_key(encryption_key) if isinstance(encryption_key, dict) else encryption_key
        )
        self._key_pinned = self._key is not None
        self._key_expires = 0.0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the API ---

    async def order_card(
        self,
        card_id: str,
        order: CardOrderFields | Mapping[str, Any],
        *,
        card_data: CardData | None = None,
        correlation_id: str | None = None,
    ) -> OrderPlaced:
        """Order one card; `card_data` (PAN, exp, name, CSC…) is encrypted for the platform."""
        encrypted = None if card_data is None else await self._encrypt(card_data, "")
        body = prepare(CardOrderRequest, order, encrypted_data=encrypted)
        path = f"{self._issuer_path}/physicalCards/{card_id}/operations:production"
        response = await self._call("POST", path, json=wire(body), correlation_id=correlation_id)
        accepted = parse(OperationAccepted, response)
        return OrderPlaced(
            card_id=card_id,
            operation_id=accepted.operation_id,
            issuer_request_id=str(body.issuer_request_id),
            replayed=response.headers.get("idempotent-replayed", "").lower() == "true",
        )

    async def order_cards(
        self,
        cards: Iterable[CardItem | Mapping[str, Any]],
        *,
        card_data: Mapping[str, CardData] | None = None,
    ) -> list[CardResult]:
        """Order many cards, 1000 per request; one result per card, in order, refusals included.

        `card_data` maps a card id to its clear data. A refused card does not stop the others:
        check `result.error_code` on each line.
        """
        items = [await self._card_item(index, card, card_data) for index, card in enumerate(cards)]
        results: list[CardResult] = []
        path = f"{self._issuer_path}/physicalCards/operations:production"
        for start in range(0, len(items), MAX_CARDS_PER_BATCH):
            chunk = [wire(item) for item in items[start : start + MAX_CARDS_PER_BATCH]]
            response = await self._call("POST", path, json={"cards": chunk})
            results.extend(parse(CardsOrderResponse, response).cards)
        return results

    async def production_status(self, card_id: str) -> list[Operation]:
        """Every PRODUCE operation of the card, oldest first (D1's on-demand status)."""
        path = f"{self._issuer_path}/physicalCards/{card_id}/productionStatus"
        response = await self._call("GET", path)
        return parse(Operations, response).operations

    async def changes(self, after: str | None = None, *, limit: int | None = None) -> ChangeFeed:
        """One page of the change feed after `after` (platform extension; not in D1).

        Raises `ChangeFeedUnavailable` when the platform has no feed (a real D1 endpoint).
        """
        params: dict[str, str | int] = {}
        if after is not None:
            params["after"] = after
        if limit is not None:
            params["limit"] = limit
        try:
            response = await self._call("GET", f"{self._issuer_path}/operations", params=params)
        except ApiError as error:
            if error.status_code in {404, 405, 501}:  # no card in this path: the route is missing
                raise ChangeFeedUnavailable("the platform serves no change feed") from error
            raise
        return parse(ChangeFeed, response)

    async def encryption_key(self) -> ECKey:
        """The platform's public key for `encryptedData` (pinned, or from its JWKS)."""
        if self._key is not None and (self._key_pinned or time.monotonic() < self._key_expires):
            return self._key
        response = await retrying.send(self._http, self._retry, "GET", JWKS_PATH)
        if response.is_error:
            raise api_error(response)
        keys = [key for key in parse(Jwks, response).keys if key.get("use") in (None, "enc")]
        if not keys:
            raise UnexpectedResponse("the platform's JWKS has no encryption key")
        self._key, self._key_expires = ECKey.import_key(keys[0]), time.monotonic() + JWKS_TTL
        return self._key

    # --- plumbing ---

    @property
    def _issuer_path(self) -> str:
        return f"/banking/v1/issuers/{self.issuer_id}"

    async def _encrypt(self, card_data: CardData, prefix: str) -> str:
        return encrypt_card_data(card_data, await self.encryption_key(), prefix=prefix)

    async def _card_item(
        self,
        index: int,
        card: CardItem | Mapping[str, Any],
        card_data: Mapping[str, CardData] | None,
    ) -> CardItem:
        card_id = (
            card.card_id if isinstance(card, CardItem) else card.get("cardId", card.get("card_id"))
        )
        clear = (card_data or {}).get(card_id) if isinstance(card_id, str) else None
        encrypted = None if clear is None else await self._encrypt(clear, f"cards[{index}].")
        return prepare(CardItem, card, encrypted_data=encrypted, prefix=f"cards[{index}].")

    async def _call(
        self, method: str, path: str, *, correlation_id: str | None = None, **request: Any
    ) -> httpx.Response:
        """The call with a bearer token; a 401 is retried once with a fresh token.

        The token is read from the cache before each attempt, so a long run of retries moves
        to the renewed token instead of outliving the old one.
        """
        correlation = correlation_id or unmasked_hex_id()
        used: list[str] = []

        async def headers() -> dict[str, str]:
            used.append(await self._tokens.get())
            return {"authorization": f"Bearer {used[-1]}", "x-correlation-id": correlation}

        response: httpx.Response | None = None
        for attempt in range(2):
            response = await retrying.send(
                self._http, self._retry, method, path, headers=headers, **request
            )
            if response.status_code != 401 or attempt == 1:
                break
            self._tokens.invalidate(used[-1])
        assert response is not None
        if response.is_error:
            raise api_error(response)
        return response

    async def _fetch_token(self) -> Token:
        form = self._credentials.form(self.issuer_id)
        response = await retrying.send(self._http, self._retry, "POST", TOKEN_PATH, data=form)
        if response.is_error:
            raise api_error(response)
        answer = parse(TokenAnswer, response)
        return Token(answer.access_token, answer.expires_in or DEFAULT_TOKEN_LIFETIME)
