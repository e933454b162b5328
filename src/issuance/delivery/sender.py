"""One POST of D1 "Notify card operations": `{"operations": [...]}` to the issuer's endpoint.

`prepare` builds the signed request (pure); `send` (httpx, blocking: pings and tools) and
`send_async` (aiohttp: the delivery worker, chosen by measurement, see bench/) put it on the wire.
Neither raises for what the network or the receiver does: every ending is an `Outcome`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import aiohttp
import httpx

from issuance.contract.sensitive import unmasked_hex_id
from issuance.delivery.signing import Signer
from issuance.domain.parties import NotificationEndpoint
from issuance.domain.retry import Outcome

NOTIFY_PATH = "/notifications/d1/v2/issuers/{issuer_id}/cards"
MAX_RETRY_AFTER = timedelta(days=7)  # longer asks are read as "much later", not overflowed


@dataclass(frozen=True, slots=True)
class Sent:
    outcome: Outcome
    latency_ms: float
    message_id: str


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    timeout: float = 10.0


def retry_after(value: str | None) -> timedelta | None:
    """`Retry-After` in seconds or as an HTTP date; None when absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return min(
            timedelta(seconds=min(int(value), MAX_RETRY_AFTER.days * 86_400)), MAX_RETRY_AFTER
        )
    try:
        moment = parsedate_to_datetime(value)
        return min(max(timedelta(0), moment - moment.now(moment.tzinfo)), MAX_RETRY_AFTER)
    except (TypeError, ValueError, OverflowError):
        return None


def message_id(delivery_ids: list[int]) -> str:
    """The Standard Webhooks `webhook-id`: the same for every retry of the same deliveries."""
    digest = hashlib.sha256(",".join(map(str, sorted(delivery_ids))).encode()).hexdigest()
    return f"msg_{digest[:32]}"


@dataclass(frozen=True, slots=True)
class Target:
    """What every POST to one issuer's endpoint shares, worked out once: the worker keeps one per
    endpoint and builds a new one only when the configuration changes."""

    url: str
    signer: Signer  # the active signing secrets
    timeout: float

    @classmethod
    def of(cls, endpoint: NotificationEndpoint, issuer_id: str) -> Target:
        return cls(
            endpoint.url + NOTIFY_PATH.format(issuer_id=issuer_id),
            Signer(endpoint.signing_secrets),
            endpoint.timeout_seconds,
        )


def prepare(
    endpoint: NotificationEndpoint,
    *,
    issuer_id: str,
    operations: list[dict[str, Any]],
    message: str | None = None,
    now: float | None = None,
    bearer: str | None = None,
) -> Request:
    """The signed request; `message` is the `webhook-id` (give `message_id(...)` so retries keep it).

    `bearer` is the issuer's own OAuth token when its endpoint asks for one (D1's Authorization).
    """
    encoded = [json.dumps(op, separators=(",", ":")).encode() for op in operations]
    return prepare_encoded(
        Target.of(endpoint, issuer_id), encoded, message=message, now=now, bearer=bearer
    )


def prepare_encoded(
    target: Target,
    operations: list[bytes],
    *,
    message: str | None = None,
    now: float | None = None,
    bearer: str | None = None,
) -> Request:
    """`prepare` for operations already in JSON (the worker sends each event's stored JSON as it
    is: no parsing and encoding again for every POST)."""
    message = message or f"msg_{unmasked_hex_id()}"
    body = b'{"operations":[' + b",".join(operations) + b"]}"
    timestamp = int(now if now is not None else time.time())
    headers = {
        "content-type": "application/json",
        "x-correlation-id": message,
        **target.signer.headers(message_id=message, timestamp=timestamp, body=body),
    }
    if bearer:
        headers["authorization"] = f"Bearer {bearer}"
    return Request(target.url, body, headers, message, target.timeout)


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _error(error: BaseException, timeout: float) -> Outcome:
    """The same words whichever client met the error: the delivery log reads alike."""
    if isinstance(error, (TimeoutError, httpx.TimeoutException)):
        return Outcome(error=f"Timeout: no response within {timeout:g} s")
    if isinstance(error, (aiohttp.ClientConnectorError, httpx.ConnectError)):
        return Outcome(error=f"ConnectError: {error}"[:255])
    return Outcome(error=f"{type(error).__name__}: {error}"[:255])


def send(
    client: httpx.Client,
    endpoint: NotificationEndpoint,
    *,
    issuer_id: str,
    operations: list[dict[str, Any]],
    message: str | None = None,
    now: float | None = None,
) -> Sent:
    """POST the operations once, blocking."""
    request = prepare(
        endpoint, issuer_id=issuer_id, operations=operations, message=message, now=now
    )
    started = time.perf_counter()
    try:
        response = client.post(
            request.url, content=request.body, headers=request.headers, timeout=request.timeout
        )
    except httpx.HTTPError as error:
        outcome = _error(error, request.timeout)
    else:
        outcome = Outcome(
            status_code=response.status_code,
            retry_after=retry_after(response.headers.get("retry-after")),
        )
    return Sent(outcome, _elapsed_ms(started), request.message_id)


@lru_cache(maxsize=64)
def _client_timeout(total: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total)


async def send_async(session: aiohttp.ClientSession, request: Request) -> Sent:
    """POST a prepared request once on the worker's event loop."""
    started = time.perf_counter()
    try:
        async with session.post(
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=_client_timeout(request.timeout),
            allow_redirects=False,
        ) as response:
            await response.read()  # drain, so the connection goes back to the pool
            outcome = Outcome(
                status_code=response.status,
                retry_after=retry_after(response.headers.get("retry-after")),
            )
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        outcome = _error(error, request.timeout)
    return Sent(outcome, _elapsed_ms(started), request.message_id)
