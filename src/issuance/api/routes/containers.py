"""BULK containers (extension): the operator ships and tracks them, the branch confirms them.

Under `/operator/v1/issuers/{issuerId}/containers` for the bureau (and the branch, which acts
through the operator API), and read-only under `/banking/v1/issuers/{issuerId}/containers` for
the issuer, who sees only its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from issuance.api.deps import (
    CardIdPath,
    CurrentIssuer,
    CurrentOperator,
    GroupIdPath,
    IssuerIdPath,
    PlatformDep,
)
from issuance.api.deps import actor_of as actor
from issuance.contract.containers import (
    ReceiveContainerRequest,
    ShipContainerRequest,
    TrackContainerRequest,
)
from issuance.domain.containers import ContainerStatus
from issuance.services import containers

operator_router = APIRouter(
    prefix="/operator/v1/issuers/{issuerId}/containers", tags=["BULK containers (extension)"]
)
issuer_router = APIRouter(
    prefix="/banking/v1/issuers/{issuerId}/containers", tags=["BULK containers (extension)"]
)
StatusFilter = Annotated[list[ContainerStatus] | None, Query(description="container statuses")]
OrderIdFilter = Annotated[
    str | None,
    Query(alias="orderId", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="second-level container"),
]
Limit = Annotated[int, Query(ge=1, le=1000)]


@operator_router.get("", summary="List an issuer's containers, most recently changed first")
def list_containers(
    _operator: CurrentOperator,
    issuer_id: IssuerIdPath,
    platform: PlatformDep,
    status: StatusFilter = None,
    order_id: OrderIdFilter = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    found = containers.list_containers(
        issuer_id=issuer_id,
        uow=platform.reader(),
        statuses=tuple(s.value for s in status or ()),
        order_id=order_id,
        limit=limit,
    )
    return {"containers": found}


@operator_router.get("/{groupId}", summary="A container, its tracking and its manifest")
def show(
    _operator: CurrentOperator,
    issuer_id: IssuerIdPath,
    group_id: GroupIdPath,
    platform: PlatformDep,
) -> dict[str, Any]:
    return containers.manifest(issuer_id=issuer_id, group_id=group_id, uow=platform.reader())


@operator_router.post(
    "/{groupId}:ship", summary="Ship the container: its cards become CARD_SHIPPED"
)
def ship(
    operator: CurrentOperator,
    issuer_id: IssuerIdPath,
    group_id: GroupIdPath,
    body: ShipContainerRequest,
    platform: PlatformDep,
) -> dict[str, Any]:
    return containers.ship(
        issuer_id=issuer_id,
        group_id=group_id,
        carrier=body.carrier,
        tracking_number=body.tracking_number,
        tracking_url=body.tracking_url,
        uow=platform.uow(),
        clock=platform.clock,
        actor=actor(operator),
    )


@operator_router.post("/{groupId}:track", summary="A carrier's report for the container")
def track(
    operator: CurrentOperator,
    issuer_id: IssuerIdPath,
    group_id: GroupIdPath,
    body: TrackContainerRequest,
    platform: PlatformDep,
) -> dict[str, Any]:
    return containers.track(
        ContainerStatus(body.status),
        issuer_id=issuer_id,
        group_id=group_id,
        message=body.message,
        uow=platform.uow(),
        clock=platform.clock,
        actor=actor(operator),
    )


@operator_router.post("/{groupId}:receive", summary="The branch received the container")
def receive(
    operator: CurrentOperator,
    issuer_id: IssuerIdPath,
    group_id: GroupIdPath,
    platform: PlatformDep,
    body: ReceiveContainerRequest | None = None,
) -> dict[str, Any]:
    return containers.receive(
        issuer_id=issuer_id,
        group_id=group_id,
        message=body.message if body else None,
        uow=platform.uow(),
        clock=platform.clock,
        actor=actor(operator),
    )


@operator_router.post(
    "/{groupId}/cards/{cardId}:handOver", summary="The branch handed a card to its cardholder"
)
def hand_over(
    operator: CurrentOperator,
    issuer_id: IssuerIdPath,
    group_id: GroupIdPath,
    card_id: CardIdPath,
    platform: PlatformDep,
) -> dict[str, Any]:
    return containers.hand_over(
        issuer_id=issuer_id,
        group_id=group_id,
        card_id=card_id,
        uow=platform.uow(),
        clock=platform.clock,
        actor=actor(operator),
    )


@issuer_router.get("", summary="Extension: your containers, most recently changed first")
def issuer_list(
    issuer: CurrentIssuer,
    platform: PlatformDep,
    status: StatusFilter = None,
    order_id: OrderIdFilter = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    found = containers.list_containers(
        issuer_id=issuer.issuer_id,
        uow=platform.reader(),
        statuses=tuple(s.value for s in status or ()),
        order_id=order_id,
        limit=limit,
    )
    return {"containers": found}


@issuer_router.get("/{groupId}", summary="Extension: one of your containers and its manifest")
def issuer_view(
    issuer: CurrentIssuer, group_id: GroupIdPath, platform: PlatformDep
) -> dict[str, Any]:
    return containers.manifest(issuer_id=issuer.issuer_id, group_id=group_id, uow=platform.reader())
