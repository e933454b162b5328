"""One logical HTTP call with its retries: the same request again until it may not help.

The caller builds the request once (body, `issuerRequestId`, `x-correlation-id`); only the
headers are asked for again before each attempt, so a refreshed token is picked up. What ends
the loop: an answer that is not retriable (returned as it is, 4xx included), or the policy
giving up (then `TransportError`, `RateLimited` or `ServerError` is raised).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from issuance.kit.errors import TransportError, api_error
from issuance.kit.retry import RetryPolicy, is_retriable, parse_retry_after

log = logging.getLogger("issuance.kit")

# No answer at all, so the request may or may not have been processed: safe to send again
# because it is idempotent (issuerRequestId), and the platform answers a replay as the original.
RETRIABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


async def no_headers() -> dict[str, str]:
    return {}


async def send(
    http: httpx.AsyncClient,
    policy: RetryPolicy,
    method: str,
    url: str,
    *,
    headers: Callable[[], Awaitable[dict[str, str]]] = no_headers,
    **request: Any,
) -> httpx.Response:
    """The first answer that is not 429/5xx; raises once the policy gives up."""
    retry = 0
    while True:
        try:
            response = await http.request(method, url, headers=await headers(), **request)
        except RETRIABLE_ERRORS as error:
            delay = policy.delay(retry)
            if delay is None:
                raise TransportError(f"{method} {url}: {type(error).__name__}: {error}") from error
            reason = type(error).__name__
        else:
            if not is_retriable(response.status_code, _error_code(response)):
                return response
            after = parse_retry_after(response.headers.get("retry-after"))
            delay = policy.delay(retry, retry_after=after)
            if delay is None:
                raise api_error(response, retry_after=after)
            reason = str(response.status_code)
        log.info("retrying %s %s after %s in %.2f s", method, url, reason, delay)
        await anyio.sleep(delay)
        retry += 1


def _error_code(response: httpx.Response) -> str | None:
    """The D1 `errorCode` of a 409 (the only 4xx that may ask for a retry)."""
    if response.status_code != 409:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("errorCode") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None
