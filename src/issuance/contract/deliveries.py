"""Bodies of the operator's notification API: the delivery log, replays, endpoints, pings.

Delivery metadata only: no operation payload is ever part of these shapes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field, PlainSerializer

from issuance.contract.common import WireModel


def _iso_utc(moment: datetime) -> str:
    """`2025-01-17T06:28:02.492Z`, like every other time of the API."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Time = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str)]
DELIVERY_STATUS = "PENDING (to be sent again), DELIVERED (2xx), FAILED (gave up) or GONE (410)"


# Ids are 64-bit in both databases: a larger one names nothing and must be a 400, not an
# overflow inside the driver (a 500; found by schemathesis).
MAX_ID = 2**63 - 1


class DeliveryAttempt(WireModel):
    attempted_at: Time
    latency_ms: float
    status_code: int | None = Field(description="None when no answer came (see error)")
    error: str | None = Field(description="Timeout or connection error, when no status came")


class Delivery(WireModel):
    """One event for one endpoint, and every attempt to deliver it, oldest first."""

    delivery_id: int
    event_id: int = Field(description="What replay takes (`events:replay`)")
    issuer_id: str
    endpoint_id: str
    card_id: str
    sequence: int = Field(description="The event's per-card sequence")
    status: str = Field(description=DELIVERY_STATUS)
    next_attempt_at: Time | None = Field(
        description="PENDING: not tried before then (in flight: when its lease ends; waiting"
        " behind the card's earlier event: that event's next try); done: its last try"
    )
    delivered_at: Time | None
    last_status_code: int | None
    last_error: str | None
    attempts: list[DeliveryAttempt]


class Deliveries(WireModel):
    deliveries: list[Delivery] = Field(description="Newest first")


class ReplayRequest(WireModel):
    event_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=10_000)


class RecoverRequest(WireModel):
    since: datetime = Field(
        description="ISO 8601; every event recorded since then is sent again (no zone: UTC)"
    )


class Replayed(WireModel):
    replayed: int = Field(description="Deliveries made due now")


class Endpoint(WireModel):
    """A configured endpoint and how its deliveries stand (its signing secrets are not shown)."""

    issuer_id: str
    endpoint_id: str
    base_url: str = Field(description="Without any user:password part")
    per_card_order: bool
    disabled: bool = Field(
        description="Answered 410 Gone, or failed without a break for too long: nothing is "
        "sent until it is enabled"
    )
    disabled_at: Time | None = None
    disabled_reason: str | None = None
    pending: int
    failed: int
    gone: int
    consecutive_failures: int = Field(description="Failed attempts since the last 2xx")
    failing_since: Time | None = Field(default=None, description="First failure of the streak")
    warned_at: Time | None = Field(default=None, description="When the streak was warned about")
    last_success_at: Time | None = None


class EndpointEvent(WireModel):
    """Something that happened to an endpoint: WARNED, DISABLED, RECOVERED or ENABLED."""

    issuer_id: str
    endpoint_id: str
    at: Time
    kind: str
    detail: str


class EndpointEvents(WireModel):
    events: list[EndpointEvent]


class Endpoints(WireModel):
    endpoints: list[Endpoint]


class Enabled(WireModel):
    issuer_id: str
    endpoint_id: str
    was_disabled: bool = Field(description="False when the endpoint was enabled already")


class PingResult(WireModel):
    """One signed `{"operations": []}` sent now; nothing is recorded."""

    ok: bool = Field(description="The endpoint answered 2xx")
    status_code: int | None
    latency_ms: float
    error: str | None = Field(description="Timeout or connection error, when no status came")
    message_id: str = Field(description="The webhook-id the test notification carried")
