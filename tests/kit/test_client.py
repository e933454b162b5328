"""The client against the real platform over loopback HTTP (uvicorn in a thread, sandbox config).

A spying transport sits between the two: it counts what goes out, and can lose an answer or spoil
a token on purpose, so retries and token refreshes are shown with the platform's real replies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from joserfc.jwk import ECKey

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.kit import (
    AsyncIssuerClient,
    AuthenticationFailed,
    BadRequest,
    ChangeFeedUnavailable,
    ClientSecret,
    Conflict,
    IdempotencyKeyReused,
    InvalidOrder,
    NotFound,
    PrivateKeyAssertion,
    RetryPolicy,
)
from issuance.services.configuration import load_config
from tests.conftest import Server
from tests.factories import DEMO, card_data, new_card_id, order_body

pytestmark = pytest.mark.asyncio
CREDENTIALS = ClientSecret("demobank01", "sandbox-secret-demobank01")
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)


def order_fields(**overrides: Any) -> dict[str, Any]:
    """A valid DEMOBANK01 order, without `encryptedData`: the client encrypts the card data."""
    body = order_body("placeholder", **{"issuerRequestId": None, **overrides})
    del body["encryptedData"]
    return body


class Spy(httpx.AsyncBaseTransport):
    """Real HTTP to the platform, recorded; optionally loses one answer or spoils one token."""

    def __init__(self, *, lose_answer_to: str | None = None, spoil_token: bool = False) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        self.lose_answer_to = lose_answer_to
        self.spoil_token = spoil_token

    def paths(self, suffix: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith(suffix)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.spoil_token and "authorization" in request.headers:
            self.spoil_token = False
            request.headers["authorization"] += "spoiled"
        await request.aread()
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        if self.lose_answer_to and request.url.path.endswith(self.lose_answer_to):
            self.lose_answer_to = None
            await response.aread()  # the platform did the work; the answer never arrives
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def spy() -> Spy:
    return Spy()


@pytest_asyncio.fixture
async def client(server: Server, spy: Spy) -> AsyncIterator[AsyncIssuerClient]:
    async with AsyncIssuerClient(
        server.base_url, DEMO, CREDENTIALS, retry=FAST, transport=spy
    ) as made:
        yield made


async def test_an_order_with_clear_card_data_travels_encrypted_and_is_tracked(
    client: AsyncIssuerClient, spy: Spy
) -> None:
    card_id, clear = new_card_id(), card_data()
    placed = await client.order_card(card_id, order_fields(), card_data=clear)
    assert (placed.card_id, placed.replayed) == (card_id, False)
    [sent] = spy.paths("operations:production")
    assert clear["pan"].encode() not in sent.content
    [operation] = await client.production_status(card_id)
    assert operation.operation_id == placed.operation_id
    assert operation.details.status == "CARD_PROD_REQUESTED"
    assert operation.issuer_request_id == placed.issuer_request_id
    assert operation.sequence == 1


async def test_a_lost_answer_is_retried_and_the_platform_replays_the_same_operation(
    server: Server,
) -> None:
    spy = Spy(lose_answer_to="operations:production")
    async with AsyncIssuerClient(
        server.base_url, DEMO, CREDENTIALS, retry=FAST, transport=spy
    ) as client:
        card_id = new_card_id()
        placed = await client.order_card(card_id, order_fields(), card_data=card_data())
        operations = await client.production_status(card_id)
    first, retry = spy.paths("operations:production")
    assert first.content == retry.content  # the same issuerRequestId and the same JWE
    assert placed.replayed is True
    assert [op.operation_id for op in operations] == [placed.operation_id]


async def test_the_token_is_fetched_once_and_reused(client: AsyncIssuerClient, spy: Spy) -> None:
    card_id = new_card_id()
    await client.order_card(card_id, order_fields(), card_data=card_data())
    await client.production_status(card_id)
    await client.production_status(card_id)
    assert len(spy.paths("/oauth2/token")) == 1


async def test_a_refused_token_is_replaced_once(server: Server) -> None:
    spy = Spy(spoil_token=True)
    async with AsyncIssuerClient(server.base_url, DEMO, CREDENTIALS, transport=spy) as client:
        with pytest.raises(NotFound):
            await client.production_status(new_card_id())
    assert len(spy.paths("/oauth2/token")) == 2
    assert len(spy.paths("/productionStatus")) == 2


async def test_refusals_raise_typed_errors_with_the_d1_code(
    client: AsyncIssuerClient, spy: Spy
) -> None:
    card_id = new_card_id()
    abroad = order_fields(shipment={"type": "INDIVIDUAL", "deliveryAddress": US_ADDRESS})
    with pytest.raises(BadRequest) as refused:
        await client.order_card(card_id, abroad, card_data=card_data())
    assert refused.value.error_code == "COUNTRY_NOT_ALLOWED"
    assert refused.value.field == "shipment.deliveryAddress.countryCode"
    assert len(spy.paths("operations:production")) == 1  # a 4xx is not retried

    placed = await client.order_card(card_id, order_fields(), card_data=card_data())
    with pytest.raises(Conflict) as in_progress:
        await client.order_card(card_id, order_fields(), card_data=card_data())
    assert in_progress.value.error_code == "ORDER_IN_PROGRESS"
    reused = order_fields(issuerRequestId=placed.issuer_request_id)
    with pytest.raises(IdempotencyKeyReused) as mismatch:  # the same key for another card
        await client.order_card(new_card_id(), reused, card_data=card_data())
    assert mismatch.value.error_code == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(NotFound) as unknown:
        await client.production_status(new_card_id())
    assert unknown.value.error_code == "CARD_NOT_FOUND"


US_ADDRESS = {"line1": "1 Main St", "zipCode": "10001", "city": "New York", "countryCode": "US"}


async def test_an_order_the_contract_refuses_is_not_sent(
    client: AsyncIssuerClient, spy: Spy
) -> None:
    with pytest.raises(InvalidOrder) as missing:
        await client.order_card(
            new_card_id(), {"cardProductId": "DEMO-DEBIT"}, card_data=card_data()
        )
    assert missing.value.field == "services"
    with pytest.raises(InvalidOrder) as bad_pan:
        await client.order_card(
            new_card_id(), order_fields(), card_data=card_data(pan="4539910000000003")
        )
    assert bad_pan.value.field == "encryptedData.pan"
    assert "4539910000000003" not in str(bad_pan.value)
    assert spy.paths("operations:production") == []


async def test_wrong_credentials_raise_authentication_failed(server: Server) -> None:
    wrong = ClientSecret("demobank01", "not-the-secret")
    async with AsyncIssuerClient(server.base_url, DEMO, wrong) as client:
        with pytest.raises(AuthenticationFailed) as refused:
            await client.production_status(new_card_id())
    assert refused.value.error_code == "INVALID_CLIENT"


async def test_a_batch_answers_one_line_per_card(client: AsyncIssuerClient) -> None:
    cards = [{"cardId": new_card_id(), **order_fields()} for _ in range(3)]
    cards[1]["cardProductId"] = "NO-SUCH-PRODUCT"
    clear = {card["cardId"]: card_data() for card in cards}
    results = await client.order_cards(cards, card_data=clear)
    assert [r.card_id for r in results] == [card["cardId"] for card in cards]
    assert results[0].operation_id
    assert results[2].operation_id
    assert (results[1].operation_id, results[1].error_code) == (None, "CARD_PRODUCT_UNKNOWN")
    assert (await client.production_status(cards[2]["cardId"]))[0].details.status


async def test_the_d1_jwt_bearer_grant(server: Server) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "demobank01-kit"})
    config = read_config(SANDBOX_CONFIG)
    demo = config.issuers[0]
    client_config = demo.clients[0].model_copy(
        update={"public_keys": (key.as_dict(private=False),)}
    )
    changed = config.model_copy(
        update={
            "issuers": (demo.model_copy(update={"clients": (client_config,)}), *config.issuers[1:])
        }
    )
    load_config(changed, uow=server.platform.uow())
    pem = key.as_pem(private=True)
    async with AsyncIssuerClient(
        server.base_url, DEMO, PrivateKeyAssertion(pem, kid="demobank01-kit")
    ) as client:
        placed = await client.order_card(new_card_id(), order_fields(), card_data=card_data())
    assert placed.operation_id


async def test_the_change_feed_or_a_clear_answer_that_there_is_none(
    client: AsyncIssuerClient,
) -> None:
    card_id = new_card_id()
    await client.order_card(card_id, order_fields(), card_data=card_data())
    try:
        page = await client.changes(limit=1000)
    except ChangeFeedUnavailable:
        return  # the platform under test has no feed yet: the client says so, typed
    assert card_id in {operation.card_id for operation in page.operations}
    again = await client.changes(after=page.cursor)
    assert again.operations == [] or all(op.sequence for op in again.operations)
