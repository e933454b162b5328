"""Notification endpoints and deliveries: health, recent deliveries, replay, enable and ping.

The same database functions as the operator API (`/operator/v1/endpoints`, `…/deliveries`,
`events:replay`), so the console and the API never disagree about an endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from issuance.api.console.audit import record
from issuance.api.console.rendering import redirect_with_notice, render
from issuance.api.console.session import PATH, CheckedForm, SignedIn
from issuance.api.deps import EndpointIdPath, IssuerIdPath, PlatformDep
from issuance.db.delivery_log import attempts_of, counts_by_endpoint, find_deliveries
from issuance.db.endpoint_health import endpoint_events, streaks
from issuance.db.outbox import DeliveryStatus, disabled_endpoints, enable_endpoint, replay
from issuance.delivery.ping import ping
from issuance.domain.audit import AuditAction
from issuance.domain.endpoint_health import Streak
from issuance.domain.errors import DomainError
from issuance.platform import Platform
from issuance.services.endpoints import configured_endpoint, configured_endpoints

router = APIRouter(prefix=PATH, include_in_schema=False)
NextField = Annotated[str, Form(max_length=2000)]


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    issuer_id: str
    endpoint_id: str
    base_url: str  # without credentials
    disabled_at: datetime | None
    disabled_reason: str | None
    pending: int
    failed: int
    gone: int
    streak: Streak


def _without_credentials(url: str) -> str:
    """`https://user:secret@host/…` → `https://host/…`: a password in a URL is a secret too."""
    scheme, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}"


def endpoint_health(platform: Platform) -> list[EndpointHealth]:
    disabled = {(i, e): (at, why) for i, e, at, why in disabled_endpoints(platform.engine)}
    statuses = [
        DeliveryStatus.PENDING.value,
        DeliveryStatus.FAILED.value,
        DeliveryStatus.GONE.value,
    ]
    counts = counts_by_endpoint(platform.engine, statuses)
    health = streaks(platform.engine)
    found = []
    for issuer_id, endpoint in configured_endpoints(uow=platform.reader()):
        key = (issuer_id, endpoint.endpoint_id)
        since, why = disabled.get(key, (None, None))
        count = counts.get(key, {})
        found.append(
            EndpointHealth(
                issuer_id=issuer_id,
                endpoint_id=endpoint.endpoint_id,
                base_url=_without_credentials(endpoint.base_url),
                disabled_at=since,
                disabled_reason=why,
                pending=count.get(DeliveryStatus.PENDING.value, 0),
                failed=count.get(DeliveryStatus.FAILED.value, 0),
                gone=count.get(DeliveryStatus.GONE.value, 0),
                streak=health.get(key, Streak()),
            )
        )
    return found


@router.get("/endpoints")
def endpoints(
    request: Request,
    session: SignedIn,
    platform: PlatformDep,
    status: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    chosen = status if status in {s.value for s in DeliveryStatus} else None
    deliveries = find_deliveries(platform.engine, status=chosen, limit=50)
    context: dict[str, Any] = {
        "endpoints": endpoint_health(platform),
        "deliveries": deliveries,
        "attempts": attempts_of(platform.engine, (d.delivery_id for d in deliveries)),
        "events": endpoint_events(platform.engine, limit=20),
        "delivery_statuses": list(DeliveryStatus),
        "status": chosen or "",
    }
    return render(request, "endpoints.html", context, session=session)


@router.post("/events/{eventId}/replay")
def replay_event(
    request: Request,
    session: CheckedForm,
    platform: PlatformDep,
    event_id: Annotated[int, Path(alias="eventId", ge=1)],
    next: NextField = "",
) -> Response:
    count = replay(platform.engine, event_ids=[event_id], now=platform.clock())
    record(
        platform,
        session,
        AuditAction.NOTIFICATIONS_REPLAYED,
        f"event={event_id} deliveries={count}",
    )
    if not count:
        return redirect_with_notice(request, next, f"Event {event_id} has no delivery.", ok=False)
    plural = "delivery is" if count == 1 else "deliveries are"
    return redirect_with_notice(request, next, f"Event {event_id}: {count} {plural} due again now.")


@router.post("/issuers/{issuerId}/endpoints/{endpointId}/enable")
def enable(
    request: Request,
    session: CheckedForm,
    platform: PlatformDep,
    issuer_id: IssuerIdPath,
    endpoint_id: EndpointIdPath,
) -> Response:
    back = f"{PATH}/endpoints"
    try:
        configured_endpoint(issuer_id, endpoint_id, uow=platform.reader())
    except DomainError as refused:
        return redirect_with_notice(request, back, str(refused), ok=False)
    was = enable_endpoint(
        platform.engine, issuer_id=issuer_id, endpoint_id=endpoint_id, at=platform.clock()
    )
    if was:
        detail = f"endpoint={endpoint_id}"
        record(platform, session, AuditAction.ENDPOINT_ENABLED, detail, issuer_id=issuer_id)
    text = "enabled; its pending notifications flow again" if was else "was not disabled"
    return redirect_with_notice(request, back, f"Endpoint {issuer_id}/{endpoint_id} {text}.")


@router.post("/issuers/{issuerId}/endpoints/{endpointId}/ping")
def ping_endpoint(
    request: Request,
    _session: CheckedForm,
    platform: PlatformDep,
    issuer_id: IssuerIdPath,
    endpoint_id: EndpointIdPath,
) -> Response:
    back = f"{PATH}/endpoints"
    try:
        endpoint = configured_endpoint(issuer_id, endpoint_id, uow=platform.reader())
    except DomainError as refused:
        return redirect_with_notice(request, back, str(refused), ok=False)
    result = ping(endpoint, issuer_id=issuer_id)
    answer = f"HTTP {result.status_code}" if result.status_code else (result.error or "no answer")
    text = f"Ping {issuer_id}/{endpoint_id}: {answer} in {result.latency_ms:.0f} ms."
    return redirect_with_notice(request, back, text, ok=result.ok)
