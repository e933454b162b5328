"""Work queues: orders that wait for an operator (production exceptions, holds, returned cards)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from issuance.api.console.actions import CANCEL, FAIL, RELEASE, RESHIP, RESUME, ActionSpec
from issuance.api.console.rendering import render
from issuance.api.console.session import PATH, SignedIn
from issuance.api.deps import PlatformDep
from issuance.db.order_search import OrderFilter, OrderSummary, search_orders
from issuance.domain.statuses import TRANSITIONS, ProductionStatus, is_cancellable

router = APIRouter(prefix=PATH, include_in_schema=False)
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Queue:
    slug: str
    title: str
    explanation: str
    where: OrderFilter
    actions: tuple[ActionSpec, ...]
    empty: str  # what an empty queue means


QUEUES = {
    queue.slug: queue
    for queue in (
        Queue(
            "exceptions",
            "Production exceptions",
            "Production stopped (for example a stock item ran out). Resume once the cause is "
            "fixed; fail or cancel a card that cannot be made.",
            OrderFilter(statuses=(ProductionStatus.CARD_PROD_EXCEPTION.value,)),
            (RESUME, FAIL, CANCEL),
            "No order is stopped in production.",
        ),
        Queue(
            "on-hold",
            "On hold",
            "Orders held back by the bureau or by their issuer. The bureau releases its own "
            "holds; an issuer's hold is lifted by the issuer.",
            OrderFilter(held=True),
            (RELEASE, FAIL, CANCEL),
            "No order is on hold.",
        ),
        Queue(
            "returned",
            "Returned cards",
            "Cards the carrier brought back. The issuer decides; re-ship on its instruction.",
            OrderFilter(shipment_status="RETURNED"),
            (RESHIP,),
            "No returned card is waiting.",
        ),
    )
}


def applicable(order: OrderSummary, actions: tuple[ActionSpec, ...]) -> list[ActionSpec]:
    """The queue's actions that the order's step and hold allow."""
    status = ProductionStatus(order.production_status)
    allowed = {
        RESUME.name: order.hold == "NONE" and status is ProductionStatus.CARD_PROD_EXCEPTION,
        RELEASE.name: order.hold != "NONE",
        FAIL.name: ProductionStatus.DATA_EXCEPTION in TRANSITIONS[status],
        CANCEL.name: is_cancellable(status),
        RESHIP.name: order.shipment_status == "RETURNED",
    }
    return [action for action in actions if allowed[action.name]]


@router.get("/queues/{slug}")
def queue(
    request: Request,
    session: SignedIn,
    platform: PlatformDep,
    slug: str,
    after: Annotated[str, Query(max_length=400)] = "",
) -> Response:
    chosen = QUEUES.get(slug)
    if chosen is None:
        return render(request, "missing.html", {"what": "queue"}, session=session, status_code=404)
    page = search_orders(platform.engine, chosen.where, after=after or None, limit=PAGE_SIZE)
    rows = [(order, applicable(order, chosen.actions)) for order in page.orders]
    context = {"queue": chosen, "page": page, "rows": rows, "first_page": not after}
    return render(request, "queue.html", context, session=session)
