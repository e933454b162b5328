"""Operator actions from the console: the same services the operator API calls, behind forms.

Which buttons an order shows comes from the domain's own tables (holdable steps, legal moves),
so the console never offers what the service would refuse; the service still decides, and a
refusal (someone moved the order meanwhile) comes back as a notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from issuance.api.console.audit import operator
from issuance.api.console.rendering import redirect_with_notice
from issuance.api.console.session import PATH, CheckedForm
from issuance.api.deps import CardIdPath, IssuerIdPath, PlatformDep
from issuance.domain.errors import DomainError
from issuance.domain.orders import Order
from issuance.domain.statuses import (
    HOLDABLE,
    TRANSITIONS,
    Hold,
    ProductionStatus,
    ShipmentStatus,
    is_cancellable,
)
from issuance.services import workflow
from issuance.services.workflow import Action, ReturnDecision

router = APIRouter(prefix=PATH, include_in_schema=False)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str  # path segment
    label: str  # button text
    asks_reason: bool  # the form has a reason field
    destructive: bool  # ends the order: shown apart, behind a disclosure


RELEASE = ActionSpec("release", "Release", False, False)
HOLD = ActionSpec("hold", "Hold", True, False)
RESUME = ActionSpec("resume", "Resume production", False, False)
RESHIP = ActionSpec("reship", "Re-ship", True, False)
FAIL = ActionSpec("fail", "Fail (data exception)", True, True)
CANCEL = ActionSpec("cancel", "Cancel", True, True)
SPECS = {spec.name: spec for spec in (RELEASE, HOLD, RESUME, RESHIP, FAIL, CANCEL)}


def available(order: Order) -> list[ActionSpec]:
    """The actions that apply to the order as it stands."""
    status, held = order.production_status, order.hold is not Hold.NONE
    found = []
    if held:
        found.append(RELEASE)
    elif status in HOLDABLE:
        found.append(HOLD)
    if status is ProductionStatus.CARD_PROD_EXCEPTION and not held:
        found.append(RESUME)
    if order.shipment is not None and order.shipment.status is ShipmentStatus.RETURNED:
        found.append(RESHIP)
    if ProductionStatus.DATA_EXCEPTION in TRANSITIONS[status]:
        found.append(FAIL)
    if is_cancellable(status):
        found.append(CANCEL)
    return found


@router.post("/issuers/{issuerId}/cards/{cardId}/actions/{name}")
def act(
    request: Request,
    session: CheckedForm,
    platform: PlatformDep,
    issuer_id: IssuerIdPath,
    card_id: CardIdPath,
    name: str,
    reason: Annotated[str, Form(max_length=255)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Apply one action to the card's current order, then go back with what happened."""
    back = next or f"{PATH}/issuers/{issuer_id}/cards/{card_id}"
    spec = SPECS.get(name)
    if spec is None:
        return redirect_with_notice(request, back, f"Unknown action {name!r}.", ok=False)
    note = reason.strip() or None
    try:
        if spec is RESHIP:
            operation = workflow.decide_return(
                ReturnDecision.RESHIP,
                issuer_id=issuer_id,
                card_id=card_id,
                uow=platform.uow(),
                clock=platform.clock,
                note=note,
                actor=operator(session),
            )
        else:
            operation = workflow.perform(
                Action(spec.name),
                issuer_id=issuer_id,
                card_id=card_id,
                uow=platform.uow(),
                clock=platform.clock,
                reason=note,
                hold_by=Hold.BUREAU,
                actor=operator(session),
            )
    except DomainError as refused:
        return redirect_with_notice(request, back, f"{spec.label} refused: {refused}", ok=False)
    status = operation["details"]["status"]
    held = " (on hold)" if operation["details"].get("onHold") else ""
    return redirect_with_notice(request, back, f"{spec.label}: card {card_id} is {status}{held}.")
