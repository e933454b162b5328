"""On-demand status: every PRODUCE operation of a card, as notifications carry them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from issuance.api.deps import CardIdPath, CurrentIssuer, PlatformDep
from issuance.api.routes.production import ERRORS
from issuance.contract.operations import ErrorBody, Operations
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
)
def production_status(
    issuer: CurrentIssuer, card_id: CardIdPath, platform: PlatformDep
) -> JSONResponse:
    """The card's operations, oldest first; each carries the latest per-card `sequence`.

    The operations are D1's shape already (domain/operations.py leaves absent fields out):
    answered as they are, not re-validated through `Operations`, which documents them.
    """
    operations = ordering.production_status(issuer.issuer_id, card_id, uow=platform.reader())
    return JSONResponse({"operations": operations})


@router.get("/physicalcards/{cardId}/productionstatus", include_in_schema=False)
def production_status_lowercase(
    issuer: CurrentIssuer, card_id: CardIdPath, platform: PlatformDep
) -> JSONResponse:
    """The spelling of one D1 guide's curl example, answered the same way."""
    return production_status(issuer, card_id, platform)
