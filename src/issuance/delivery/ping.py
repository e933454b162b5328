"""A test notification, sent now: is this endpoint reachable, and does it accept our signature?

The body is an empty D1 notification, `{"operations": []}`, signed like any other. D1 defines no
test event, and a receiver that processes the list it is given does nothing with an empty one,
so a ping is safe for receivers that know nothing of pings. It goes through the outbox not at
all: nothing is recorded, no delivery changes state, and a disabled (410) endpoint is pinged
too, so an operator can check it before enabling it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from issuance.delivery.sender import send
from issuance.domain.parties import NotificationEndpoint


@dataclass(frozen=True, slots=True)
class Ping:
    status_code: int | None
    latency_ms: float
    error: str | None
    message_id: str

    @property
    def ok(self) -> bool:
        """Acknowledged as a real notification would need to be: with a 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


def ping(
    endpoint: NotificationEndpoint, *, issuer_id: str, client: httpx.Client | None = None
) -> Ping:
    """POST `{"operations": []}` once, blocking for at most the endpoint's timeout."""
    if client is None:  # no proxy from the environment: the path the worker's POSTs take
        with httpx.Client(trust_env=False) as own:
            return ping(endpoint, issuer_id=issuer_id, client=own)
    sent = send(client, endpoint, issuer_id=issuer_id, operations=[])
    return Ping(
        status_code=sent.outcome.status_code,
        latency_ms=sent.latency_ms,
        error=sent.outcome.error,
        message_id=sent.message_id,
    )
