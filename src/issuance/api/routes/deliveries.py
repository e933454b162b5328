"""The operator's notification API (`/operator/v1`): the delivery log, replays, endpoints, pings.

What `issuance notifications …` does, over HTTP, for tools that cannot run the CLI next to the
database. Deliveries show their metadata and attempts, never the operations they carry.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Path, Query

from issuance.api.audit_trail import record_action
from issuance.api.deps import (
    CurrentOperator,
    EndpointIdPath,
    IssuerIdPath,
    PlatformDep,
    actor_of,
)
from issuance.contract.common import CARD_ID_PATTERN, ISSUER_ID_PATTERN
from issuance.contract.deliveries import (
    MAX_ID,
    Deliveries,
    Delivery,
    DeliveryAttempt,
    Enabled,
    Endpoint,
    EndpointEvent,
    EndpointEvents,
    Endpoints,
    PingResult,
    RecoverRequest,
    Replayed,
    ReplayRequest,
)
from issuance.contract.operations import ErrorBody
from issuance.db.delivery_log import (
    AttemptView,
    attempts_of,
    counts_by_endpoint,
    find_deliveries,
    find_delivery,
)
from issuance.db.endpoint_health import endpoint_events, streaks
from issuance.db.outbox import (
    DeliveryStatus,
    DeliveryView,
    disabled_endpoints,
    enable_endpoint,
    replay,
)
from issuance.delivery.ping import ping
from issuance.domain.audit import AuditAction
from issuance.domain.endpoint_health import Streak
from issuance.domain.errors import NotFound
from issuance.services.endpoints import configured_endpoint, configured_endpoints

router = APIRouter(prefix="/operator/v1", tags=["Operator"])

ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "A parameter or the body is not valid"},
    401: {"model": ErrorBody, "description": "Missing, invalid or expired access token"},
    403: {"model": ErrorBody, "description": "Not an operator token"},
}
NOT_FOUND: dict[int | str, dict[str, object]] = {
    **ERRORS,
    404: {"model": ErrorBody, "description": "No such delivery, issuer or endpoint"},
}


def _delivery(view: DeliveryView, attempts: list[AttemptView]) -> Delivery:
    return Delivery(
        delivery_id=view.delivery_id,
        event_id=view.event_id,
        issuer_id=view.issuer_id,
        endpoint_id=view.endpoint_id,
        card_id=view.card_id,
        sequence=view.sequence,
        status=view.status,
        next_attempt_at=view.next_attempt_at,
        delivered_at=view.delivered_at,
        last_status_code=view.last_status_code,
        last_error=view.last_error,
        attempts=[
            DeliveryAttempt(
                attempted_at=a.attempted_at,
                latency_ms=a.latency_ms,
                status_code=a.status_code,
                error=a.error,
            )
            for a in attempts
        ],
    )


@router.get(
    "/deliveries",
    summary="The notification delivery log, newest first, with each delivery's attempts",
    response_model=Deliveries,
    responses=ERRORS,
)
def list_deliveries(
    _operator: CurrentOperator,
    platform: PlatformDep,
    status: DeliveryStatus | None = None,
    issuer_id: Annotated[str | None, Query(alias="issuerId", pattern=ISSUER_ID_PATTERN)] = None,
    card_id: Annotated[str | None, Query(alias="cardId", pattern=CARD_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Deliveries:
    views = find_deliveries(
        platform.engine,
        status=status.value if status else None,
        issuer_id=issuer_id,
        card_id=card_id,
        limit=limit,
    )
    attempts = attempts_of(platform.engine, (v.delivery_id for v in views))
    return Deliveries(deliveries=[_delivery(v, attempts[v.delivery_id]) for v in views])


@router.get(
    "/deliveries/{deliveryId}",
    summary="One delivery and its attempts",
    response_model=Delivery,
    responses=NOT_FOUND,
)
def get_delivery(
    _operator: CurrentOperator,
    platform: PlatformDep,
    delivery_id: Annotated[int, Path(alias="deliveryId", ge=1, le=MAX_ID)],
) -> Delivery:
    view = find_delivery(platform.engine, delivery_id)
    if view is None:
        raise NotFound(f"no delivery {delivery_id}", field="deliveryId", code="DELIVERY_NOT_FOUND")
    return _delivery(view, attempts_of(platform.engine, [delivery_id])[delivery_id])


@router.post(
    "/events:replay",
    summary="Send these events again to every endpoint they were for",
    response_model=Replayed,
    responses=ERRORS,
)
def replay_events(
    operator: CurrentOperator, platform: PlatformDep, body: ReplayRequest
) -> Replayed:
    count = replay(platform.engine, event_ids=body.event_ids, now=platform.clock())
    record_action(
        platform, actor_of(operator), AuditAction.NOTIFICATIONS_REPLAYED, f"deliveries={count}"
    )
    return Replayed(replayed=count)


@router.post(
    "/events:recover",
    summary="Send again every event recorded since a moment (a receiver lost its data)",
    response_model=Replayed,
    responses=ERRORS,
)
def recover_events(
    operator: CurrentOperator, platform: PlatformDep, body: RecoverRequest
) -> Replayed:
    since = body.since if body.since.tzinfo else body.since.replace(tzinfo=UTC)
    count = replay(platform.engine, since=since, now=platform.clock())
    record_action(
        platform, actor_of(operator), AuditAction.NOTIFICATIONS_RECOVERED, f"deliveries={count}"
    )
    return Replayed(replayed=count)


def _without_credentials(url: str) -> str:
    """A `user:password@` in a base URL is a secret too."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@router.get(
    "/endpoints",
    summary="Every configured notification endpoint, disabled or not, with its backlog",
    response_model=Endpoints,
    responses=ERRORS,
)
def list_endpoints(_operator: CurrentOperator, platform: PlatformDep) -> Endpoints:
    configured = configured_endpoints(uow=platform.reader())
    disabled = {(i, e): (at, why) for i, e, at, why in disabled_endpoints(platform.engine)}
    backlog = DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.GONE
    counts = counts_by_endpoint(platform.engine, [s.value for s in backlog])
    health = streaks(platform.engine)
    endpoints = []
    for issuer_id, endpoint in configured:
        key = (issuer_id, endpoint.endpoint_id)
        since, why = disabled.get(key, (None, None))
        count = counts.get(key, {})
        streak = health.get(key, Streak())
        endpoints.append(
            Endpoint(
                issuer_id=issuer_id,
                endpoint_id=endpoint.endpoint_id,
                base_url=_without_credentials(endpoint.base_url),
                per_card_order=endpoint.per_card_order,
                disabled=key in disabled,
                disabled_at=since,
                disabled_reason=why,
                pending=count.get(DeliveryStatus.PENDING.value, 0),
                failed=count.get(DeliveryStatus.FAILED.value, 0),
                gone=count.get(DeliveryStatus.GONE.value, 0),
                consecutive_failures=streak.consecutive_failures,
                failing_since=streak.failing_since,
                warned_at=streak.warned_at,
                last_success_at=streak.last_success_at,
            )
        )
    return Endpoints(endpoints=endpoints)


@router.get(
    "/endpoint-events",
    summary="What happened to endpoints, newest first: warned, disabled, recovered, enabled",
    response_model=EndpointEvents,
    responses=ERRORS,
)
def list_endpoint_events(
    _operator: CurrentOperator,
    platform: PlatformDep,
    issuer_id: Annotated[str | None, Query(alias="issuerId", pattern=ISSUER_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EndpointEvents:
    events = endpoint_events(platform.engine, issuer_id=issuer_id, limit=limit)
    return EndpointEvents(
        events=[
            EndpointEvent(
                issuer_id=e.issuer_id,
                endpoint_id=e.endpoint_id,
                at=e.at,
                kind=e.kind,
                detail=e.detail,
            )
            for e in events
        ]
    )


@router.post(
    "/issuers/{issuerId}/endpoints/{endpointId}:enable",
    summary="Resume delivery to a disabled endpoint (its FAILED and GONE deliveries need a replay)",
    response_model=Enabled,
    responses=NOT_FOUND,
)
def enable(
    operator: CurrentOperator,
    platform: PlatformDep,
    issuer_id: IssuerIdPath,
    endpoint_id: EndpointIdPath,
) -> Enabled:
    configured_endpoint(issuer_id, endpoint_id, uow=platform.reader())
    was_disabled = enable_endpoint(
        platform.engine, issuer_id=issuer_id, endpoint_id=endpoint_id, at=platform.clock()
    )
    detail = f"endpoint={endpoint_id};wasDisabled={was_disabled}"
    record_action(
        platform, actor_of(operator), AuditAction.ENDPOINT_ENABLED, detail, issuer_id=issuer_id
    )
    return Enabled(issuer_id=issuer_id, endpoint_id=endpoint_id, was_disabled=was_disabled)


@router.post(
    "/issuers/{issuerId}/endpoints/{endpointId}:ping",
    summary='Send a signed test notification, `{"operations": []}`, to the endpoint now',
    response_model=PingResult,
    responses=NOT_FOUND,
)
def ping_endpoint(
    _operator: CurrentOperator,
    platform: PlatformDep,
    issuer_id: IssuerIdPath,
    endpoint_id: EndpointIdPath,
) -> PingResult:
    """Answers 200 whatever the endpoint did: `ok`, `statusCode` and `error` tell what it was."""
    endpoint = configured_endpoint(issuer_id, endpoint_id, uow=platform.reader())
    result = ping(endpoint, issuer_id=issuer_id)
    return PingResult(
        ok=result.ok,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        error=result.error,
        message_id=result.message_id,
    )
