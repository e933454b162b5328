"""Retries and backoff, against a scripted platform (httpx.MockTransport): only what may succeed
later is retried (no answer, 429, 5xx, 409 CONCURRENT_REQUEST), with the same request each time;
any other 4xx never is."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from issuance.kit import (
    ApiError,
    AsyncIssuerClient,
    BadRequest,
    ClientSecret,
    Conflict,
    RateLimited,
    RetryPolicy,
    ServerError,
    TransportError,
)

pytestmark = pytest.mark.asyncio
ISSUER = "DEMOBANK01"
FAST = RetryPolicy(retries=4, base_delay=0.001, max_delay=0.005)
ORDER: dict[str, Any] = {
    "cardProductId": "DEMO-DEBIT",
    "services": {"issuance": "CREATION"},
    "encryptedData": "a.b.c.d.e",
}
Answer = httpx.Response | Exception


class Platform:
    """Answers the token endpoint, then each API call with the next scripted answer."""

    def __init__(self, *answers: Answer) -> None:
        self.script = list(answers)
        self.calls: list[httpx.Request] = []
        self.tokens = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/authz/v1/oauth2/token":
            self.tokens += 1
            return httpx.Response(200, json={"access_token": f"t{self.tokens}", "expires_in": 900})
        self.calls.append(request)
        answer = self.script.pop(0) if self.script else httpx.Response(202, json=ACCEPTED)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, policy: RetryPolicy = FAST) -> AsyncIssuerClient:
        return AsyncIssuerClient(
            "http://platform",
            ISSUER,
            ClientSecret("demobank01", "secret"),
            retry=policy,
            transport=httpx.MockTransport(self),
        )


ACCEPTED = {"operationId": "op-1"}


def error(status: int, code: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"errorCode": code, "error": "x"}, headers=headers)


def down(request: httpx.Request) -> Exception:
    return httpx.ConnectError("connection refused", request=request)


async def test_503_then_accepted_sends_the_same_request_each_time() -> None:
    platform = Platform(error(503, "UNAVAILABLE"), error(502, "HTTP_ERROR"))
    async with platform.client() as client:
        placed = await client.order_card("card-1", ORDER)
    assert placed.operation_id == "op-1"
    assert len(platform.calls) == 3
    bodies = {call.content for call in platform.calls}
    assert len(bodies) == 1  # the same issuerRequestId, the same bytes
    assert json.loads(bodies.pop())["issuerRequestId"] == placed.issuer_request_id
    assert len({call.headers["x-correlation-id"] for call in platform.calls}) == 1


async def test_connection_errors_and_timeouts_are_retried() -> None:
    request = httpx.Request("POST", "http://platform")
    platform = Platform(down(request), httpx.ReadTimeout("slow", request=request))
    async with platform.client() as client:
        assert (await client.order_card("card-1", ORDER)).operation_id == "op-1"
    assert len(platform.calls) == 3


async def test_no_answer_at_all_ends_as_a_transport_error() -> None:
    request = httpx.Request("POST", "http://platform")
    platform = Platform(*[down(request)] * 10)
    async with platform.client() as client:
        with pytest.raises(TransportError, match="ConnectError"):
            await client.order_card("card-1", ORDER)
    assert len(platform.calls) == 5  # the first attempt and four retries


async def test_5xx_every_time_ends_as_a_server_error_with_the_code() -> None:
    platform = Platform(*[error(500, "INTERNAL_ERROR")] * 10)
    async with platform.client() as client:
        with pytest.raises(ServerError) as raised:
            await client.production_status("card-1")
    assert raised.value.error_code == "INTERNAL_ERROR"
    assert len(platform.calls) == 5


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (error(400, "COUNTRY_NOT_ALLOWED"), BadRequest, "COUNTRY_NOT_ALLOWED"),
        (error(409, "ORDER_IN_PROGRESS"), Conflict, "ORDER_IN_PROGRESS"),
    ],
)
async def test_a_4xx_is_never_retried(
    answer: httpx.Response, kind: type[ApiError], code: str
) -> None:
    platform = Platform(answer)
    async with platform.client() as client:
        with pytest.raises(kind) as raised:
            await client.order_card("card-1", ORDER)
    assert raised.value.error_code == code
    assert len(platform.calls) == 1


async def test_a_concurrent_request_409_is_retried_until_the_first_attempt_is_answered() -> None:
    platform = Platform(error(409, "CONCURRENT_REQUEST"), error(409, "CONCURRENT_REQUEST"))
    async with platform.client() as client:
        placed = await client.order_card("card-1", ORDER)
    assert placed.operation_id == "op-1"
    assert len(platform.calls) == 3
    assert len({call.content for call in platform.calls}) == 1


async def test_retry_after_is_honoured() -> None:
    platform = Platform(error(429, "TOO_MANY_REQUESTS", **{"Retry-After": "1"}))
    started = time.monotonic()
    async with platform.client() as client:
        await client.order_card("card-1", ORDER)
    assert time.monotonic() - started >= 1.0
    assert len(platform.calls) == 2


async def test_a_retry_after_too_long_to_wait_gives_up_at_once() -> None:
    platform = Platform(error(429, "TOO_MANY_REQUESTS", **{"Retry-After": "3600"}))
    async with platform.client() as client:
        with pytest.raises(RateLimited) as raised:
            await client.order_card("card-1", ORDER)
    assert raised.value.retry_after == 3600
    assert len(platform.calls) == 1


async def test_a_401_fetches_a_new_token_once() -> None:
    platform = Platform(error(401, "TOKEN_EXPIRED"), httpx.Response(200, json={"operations": []}))
    async with platform.client() as client:
        assert await client.production_status("card-1") == []
    assert platform.tokens == 2
    assert [c.headers["authorization"] for c in platform.calls] == ["Bearer t1", "Bearer t2"]


async def test_the_token_endpoint_is_retried_too() -> None:
    answers = iter([error(503, "UNAVAILABLE")])

    def platform(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            answer = next(answers, None)
            return answer or httpx.Response(200, json={"access_token": "t", "expires_in": 900})
        return httpx.Response(200, json={"operations": []})

    client = AsyncIssuerClient(
        "http://platform",
        ISSUER,
        ClientSecret("demobank01", "secret"),
        retry=FAST,
        transport=httpx.MockTransport(platform),
    )
    async with client:
        assert await client.production_status("card-1") == []
