"""One POST of D1 "Notify card operations": `{"operations": [...]}` to the issuer's endpoint."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from issuance.delivery.signing import signature_headers
from issuance.domain.parties import NotificationEndpoint
from issuance.domain.retry import Outcome

NOTIFY_PATH = "/notifications/d1/v2/issuers/{issuer_id}/cards"


@dataclass(frozen=True, slots=True)
class Sent:
    outcome: Outcome
    latency_ms: float
    message_id: str


MAX_RETRY_AFTER = timedelta(days=7)  # longer asks are read as "much later", not overflowed


def _retry_after(response: httpx.Response) -> timedelta | None:
    """`Retry-After` in seconds or as an HTTP date; None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
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


def send(
    client: httpx.Client,
    endpoint: NotificationEndpoint,
    *,
    issuer_id: str,
    operations: list[dict[str, Any]],
    message: str | None = None,
    now: float | None = None,
) -> Sent:
    """POST the operations once; never raises for what the network or the receiver does.

    `message` is the `webhook-id`; give `message_id(delivery ids)` so retries keep it.
    """
    message = message or f"msg_{uuid.uuid4().hex}"
    body = json.dumps({"operations": operations}, separators=(",", ":")).encode()
    timestamp = int(now if now is not None else time.time())
    headers = {
        "content-type": "application/json",
        "x-correlation-id": message,
        **signature_headers(
            endpoint.signing_secrets, message_id=message, timestamp=timestamp, body=body
        ),
    }
    url = endpoint.url + NOTIFY_PATH.format(issuer_id=issuer_id)
    started = time.perf_counter()
    try:
        response = client.post(url, content=body, headers=headers, timeout=endpoint.timeout_seconds)
    except httpx.HTTPError as error:
        outcome = Outcome(error=f"{type(error).__name__}: {error}"[:255])
    else:
        outcome = Outcome(status_code=response.status_code, retry_after=_retry_after(response))
    return Sent(
        outcome=outcome, latency_ms=(time.perf_counter() - started) * 1000, message_id=message
    )
