"""On-demand status: every PRODUCE operation of a card, as notifications carry them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from issuance.api.deps import CARD_OPENAPI, card_target
from issuance.api.routes.production import ERRORS
from issuance.contract.operations import ErrorBody, Operations
from issuance.db.status_reads import StatusReads, for_card_blocking
from issuance.platform import Platform
from issuance.services import ordering

STATUS_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in ERRORS.items() if k in (400, 401, 403)},
    404: {"model": ErrorBody, "description": "No order for this card"},
}

router = APIRouter(prefix="/banking/v1/issuers/{issuerId}", tags=["Physical card order"])


@router.get(
    "/physicalCards/{cardId}/productionStatus",
    summary="Get card order status",
    response_model=Operations,
    response_model_exclude_none=True,
    responses=STATUS_ERRORS,
    openapi_extra=CARD_OPENAPI,
)
async def production_status(request: Request) -> JSONResponse:
    """The card's operations, oldest first; each carries the latest per-card `sequence`.

    On PostgreSQL the read runs on the event loop (db/status_reads.py), elsewhere in a request
    thread; either way one SELECT, past the unit of work. The operations are D1's shape already
    (domain/operations.py leaves absent fields out): answered as they are, not re-validated
    through `Operations`, which documents them. The caller, the card and the platform are read
    off the request, not solved by FastAPI as dependencies: the busiest read (api/deps.py
    `card_target`).
    """
    issuer, card_id, _ = card_target(request)
    reads: StatusReads | None = getattr(request.app.state, "status_reads", None)
    if reads is not None:
        orders = await reads.for_card(issuer.issuer_id, card_id)
    else:
        platform: Platform = request.app.state.platform
        orders = await run_in_threadpool(
            for_card_blocking, platform.engine, issuer.issuer_id, card_id
        )
    return JSONResponse({"operations": ordering.card_operations(card_id, orders)})


@router.get("/physicalcards/{cardId}/productionstatus", include_in_schema=False)
async def production_status_lowercase(request: Request) -> JSONResponse:
    """The spelling of one D1 guide's curl example, answered the same way."""
    return await production_status(request)
