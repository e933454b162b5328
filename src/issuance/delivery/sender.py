"""One POST of D1 "Notify card operations": `{"operations": [...]}` to the issuer's endpoint."""

from __future__ import annotations

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


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(timedelta(0), moment - moment.now(moment.tzinfo))


def send(
    client: httpx.Client,
    endpoint: NotificationEndpoint,
    *,
    issuer_id: str,
    operations: list[dict[str, Any]],
    now: float | None = None,
) -> Sent:
    """POST the operations once; never raises for what the network or the receiver does."""
    message_id = f"msg_{uuid.uuid4().hex}"
    body = json.dumps({"operations": operations}, separators=(",", ":")).encode()
    timestamp = int(now if now is not None else time.time())
    headers = {
        "content-type": "application/json",
        "x-correlation-id": message_id,
        **signature_headers(
            endpoint.signing_secrets, message_id=message_id, timestamp=timestamp, body=body
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
        outcome=outcome, latency_ms=(time.perf_counter() - started) * 1000, message_id=message_id
    )
