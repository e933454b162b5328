"""The operator API (`/operator/v1`): the bureau drives orders, batches and stock."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from issuance.api.deps import CardIdPath, CurrentOperator, IssuerIdPath, PlatformDep, actor_of
from issuance.contract.workflow import ActionRequest, ReplenishRequest
from issuance.domain.statuses import Hold, ProductionStatus
from issuance.services import workflow
from issuance.services.workflow import Action

router = APIRouter(prefix="/operator/v1", tags=["Operator"])
StatusFilter = Annotated[list[ProductionStatus] | None, Query(description="details.status values")]


@router.get("/orders", summary="List orders, most recently changed first")
def list_orders(
    _operator: CurrentOperator,
    platform: PlatformDep,
    status: StatusFilter = None,
    issuer_id: Annotated[str | None, Query(alias="issuerId")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    statuses = tuple(s.value for s in status or ())
    with platform.reader() as uow:
        orders = uow.orders.search(issuer_id=issuer_id, statuses=statuses, limit=limit)
        return {"orders": [{"issuerId": o.issuer_id, **o.operation()} for o in orders]}


@router.post(
    "/issuers/{issuerId}/physicalCards/{cardId}/actions/{action}",
    summary="Apply a production or shipment action to the card's current order",
)
def act(
    operator: CurrentOperator,
    issuer_id: IssuerIdPath,
    card_id: CardIdPath,
    action: Action,
    platform: PlatformDep,
    body: ActionRequest | None = None,
) -> dict[str, Any]:
    """`prepare`, `queue`, `start`, `complete`, `ship`, `deliver`, `undeliverable`, `return`,
    `hold`, `release`, `resume`, `exception`, `fail`, `cancel`."""
    request = body or ActionRequest()
    return workflow.perform(
        action,
        issuer_id=issuer_id,
        card_id=card_id,
        uow=platform.uow(),
        clock=platform.clock,
        reason=request.reason,
        error_code=request.error_code,
        carrier=request.carrier,
        tracking_number=request.tracking_number,
        tracking_url=request.tracking_url,
        hold_by=Hold.BUREAU,
        actor=actor_of(operator),
    )


@router.post(
    "/batches:run", summary="Batch prepared orders for production now (as after a cut-off)"
)
def run_batches(operator: CurrentOperator, platform: PlatformDep) -> dict[str, Any]:
    batches = workflow.batch_production(
        uow=platform.uow(), clock=platform.clock, actor=actor_of(operator)
    )
    return {
        "batches": [{"productionBatch": name, "cardIds": cards} for name, cards in batches.items()]
    }


@router.post("/sla:review", summary="Flag orders at risk or late now")
def review_sla(_operator: CurrentOperator, platform: PlatformDep) -> dict[str, int]:
    return {"changed": workflow.review_sla(uow=platform.uow(), clock=platform.clock)}


@router.get("/issuers/{issuerId}/stock", summary="Stock levels of an issuer")
def stock(
    _operator: CurrentOperator, issuer_id: IssuerIdPath, platform: PlatformDep
) -> dict[str, int]:
    with platform.reader() as uow:
        return uow.stock.levels(issuer_id)


@router.post(
    "/issuers/{issuerId}/stock/{stockItemId}:replenish", summary="Add stock; waiting orders resume"
)
def replenish(
    operator: CurrentOperator,
    issuer_id: IssuerIdPath,
    stock_item_id: Annotated[str, Path(alias="stockItemId", pattern=r"^[A-Za-z0-9_.-]{1,64}$")],
    body: ReplenishRequest,
    platform: PlatformDep,
) -> dict[str, Any]:
    level, resumed = workflow.replenish(
        issuer_id,
        stock_item_id,
        body.quantity,
        uow=platform.uow(),
        clock=platform.clock,
        actor=actor_of(operator),
    )
    return {"stockItemId": stock_item_id, "quantity": level, "resumedCardIds": resumed}
