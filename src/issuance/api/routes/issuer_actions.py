"""Issuer-side extensions: cancel, hold and release an order; decide for a returned card.

D1's reference shows no such calls for physical cards; these are ours, under the card's path in
the same custom-method style (`operations:cancel`), and answer with the operation object.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from issuance.api.deps import CardIdPath, CurrentIssuer, PlatformDep, actor_of
from issuance.api.routes.production import ERRORS
from issuance.contract.operations import ErrorBody
from issuance.contract.workflow import HoldRequest, ReturnDecisionRequest
from issuance.domain.statuses import Hold
from issuance.services import workflow
from issuance.services.workflow import Action, ReturnDecision

ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in ERRORS.items() if k in (400, 401, 403, 413)},
    404: {"model": ErrorBody, "description": "No order for this card"},
    409: {"model": ErrorBody, "description": "The order's state does not allow this now"},
}

router = APIRouter(
    prefix="/banking/v1/issuers/{issuerId}/physicalCards/{cardId}",
    tags=["Order actions (extension)"],
)


@router.post(
    "/operations:cancel",
    summary="Cancel the card's order (until personalization starts)",
    responses=ACTION_ERRORS,
)
def cancel(issuer: CurrentIssuer, card_id: CardIdPath, platform: PlatformDep) -> dict[str, Any]:
    """Possible while `details.cancellableUntil` is shown; a 409 after that."""
    return workflow.perform(
        Action.CANCEL,
        issuer_id=issuer.issuer_id,
        card_id=card_id,
        uow=platform.uow(),
        clock=platform.clock,
        reason="cancelled by the issuer",
        actor=actor_of(issuer),
    )


@router.post(
    "/operations:hold",
    summary="Hold the card's order (e.g. during a fraud review)",
    responses=ACTION_ERRORS,
)
def hold(
    issuer: CurrentIssuer, card_id: CardIdPath, body: HoldRequest, platform: PlatformDep
) -> dict[str, Any]:
    return workflow.perform(
        Action.HOLD,
        issuer_id=issuer.issuer_id,
        card_id=card_id,
        uow=platform.uow(),
        clock=platform.clock,
        reason=body.reason,
        hold_by=Hold.ISSUER,
        actor=actor_of(issuer),
    )


@router.post("/operations:release", summary="Release the card's order", responses=ACTION_ERRORS)
def release(issuer: CurrentIssuer, card_id: CardIdPath, platform: PlatformDep) -> dict[str, Any]:
    return workflow.perform(
        Action.RELEASE,
        issuer_id=issuer.issuer_id,
        card_id=card_id,
        uow=platform.uow(),
        clock=platform.clock,
        hold_by=Hold.ISSUER,  # the issuer lifts its own holds only
        actor=actor_of(issuer),
    )


@router.post(
    "/returnDecision",
    summary="Re-ship or destroy a card returned to the bureau",
    responses=ACTION_ERRORS,
)
def return_decision(
    issuer: CurrentIssuer, card_id: CardIdPath, body: ReturnDecisionRequest, platform: PlatformDep
) -> dict[str, Any]:
    return workflow.decide_return(
        ReturnDecision(body.decision),
        issuer_id=issuer.issuer_id,
        card_id=card_id,
        uow=platform.uow(),
        clock=platform.clock,
        tracking_number=body.tracking_number,
        note=body.note,
        actor=actor_of(issuer),
    )
