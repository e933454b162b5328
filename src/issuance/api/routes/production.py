"""Ordering physical cards: one card, or a batch of up to 1000."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from issuance.api.deps import CardIdPath, CurrentIssuer, PlatformDep, actor_of
from issuance.api.errors import error_body, schema_problems
from issuance.contract.operations import ErrorBody
from issuance.contract.orders import (
    CardItem,
    CardOrderRequest,
    CardResult,
    CardsOrderResponse,
    OperationAccepted,
)
from issuance.domain.errors import DomainError, InvalidRequest
from issuance.platform import Platform
from issuance.security.tokens import Principal
from issuance.services import ordering
from issuance.services.intake import to_command

router = APIRouter(
    prefix="/banking/v1/issuers/{issuerId}/physicalCards", tags=["Physical card order"]
)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "Invalid request: the body, a field or the issuer's configuration",
    },
    401: {"model": ErrorBody, "description": "Missing, invalid or expired access token"},
    403: {"model": ErrorBody, "description": "The token belongs to another issuer"},
    409: {"model": ErrorBody, "description": "The card already has an order in progress"},
    413: {"model": ErrorBody, "description": "The body exceeds the size limit"},
    422: {"model": ErrorBody, "description": "issuerRequestId reused with a different body"},
}
DryRun = Annotated[
    bool, Query(alias="dryRun", description="Extension: validate only, report every problem")
]


def _dry_run_answer(problems: list[Any]) -> JSONResponse:
    if problems:
        return JSONResponse(error_body(problems), status_code=400)
    return JSONResponse({"dryRun": True, "valid": True})


@router.post(
    "/{cardId}/operations:production",
    summary="Order a physical card",
    status_code=202,
    response_model=OperationAccepted,
    responses=ERRORS,
)
def order_card(
    issuer: CurrentIssuer,
    card_id: CardIdPath,
    body: CardOrderRequest,
    platform: PlatformDep,
    dry_run: DryRun = False,
) -> JSONResponse:
    """Order one card. Idempotent on `issuerRequestId`: a retry answers `Idempotent-Replayed: true`."""
    command = to_command(
        body, issuer_id=issuer.issuer_id, card_id=card_id, keys=platform.intake_keys
    )
    if dry_run:
        return _dry_run_answer(ordering.dry_run(command, uow=platform.reader()))
    placement = ordering.place_order(
        command,
        uow=platform.uow(),
        clock=platform.clock,
        new_id=platform.new_id,
        actor=actor_of(issuer),
    )
    headers = {"Idempotent-Replayed": "true"} if placement.replayed else {}
    return JSONResponse({"operationId": placement.operation_id}, status_code=202, headers=headers)


@router.post(
    "/operations:production",
    summary="Order physical cards (batch of 1 to 1000)",
    status_code=202,
    response_model=CardsOrderResponse,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/CardsOrderRequest"}}
            },
        }
    },
)
def order_cards(
    issuer: CurrentIssuer,
    platform: PlatformDep,
    body: Annotated[Any, Body(include_in_schema=False)],
    dry_run: DryRun = False,
) -> JSONResponse:
    """Order a batch. Each card is validated and placed on its own; the answer has one line per card."""
    cards = _cards(body)
    results = [
        _order_one(index, item, issuer, platform, dry_run) for index, item in enumerate(cards)
    ]
    answer = CardsOrderResponse(cards=results).model_dump(by_alias=True, exclude_none=True)
    return JSONResponse(answer, status_code=200 if dry_run else 202)


def _cards(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        raise InvalidRequest(
            "the body must be an object with a cards array",
            field="cards",
            code="FIELD_INVALID_FORMAT",
        )
    unknown = sorted(set(body) - {"cards"})
    if unknown:
        raise InvalidRequest(
            "is not a field of this request", field=unknown[0], code="FIELD_UNKNOWN"
        )
    cards = body.get("cards")
    if not isinstance(cards, list) or not 1 <= len(cards) <= 1000:
        raise InvalidRequest(
            "must be an array of 1 to 1000 cards", field="cards", code="FIELD_INVALID_FORMAT"
        )
    return cards


def _order_one(
    index: int, item: Any, issuer: Principal, platform: Platform, dry_run: bool
) -> CardResult:
    card_id = item.get("cardId") if isinstance(item, dict) else None
    shown_id = card_id if isinstance(card_id, str) else ""
    try:
        card = CardItem.model_validate(item)
        command = to_command(
            card, issuer_id=issuer.issuer_id, card_id=card.card_id, keys=platform.intake_keys
        )
        if dry_run:
            problems = ordering.dry_run(command, uow=platform.reader())
            if problems:
                raise InvalidRequest.from_problems(problems)
            return CardResult(card_id=shown_id)
        placement = ordering.place_order(
            command,
            uow=platform.uow(),
            clock=platform.clock,
            new_id=platform.new_id,
            actor=actor_of(issuer),
        )
    except ValidationError as error:
        return _refused(
            index,
            shown_id,
            error_body(schema_problems([dict(e) for e in error.errors(include_input=False)])),
        )
    except DomainError as error:
        return _refused(index, shown_id, error_body(error.all_problems))
    return CardResult(
        card_id=shown_id, operation_id=placement.operation_id, replayed=placement.replayed or None
    )


def _refused(index: int, card_id: str, body: dict[str, Any]) -> CardResult:
    field = body.get("field")
    return CardResult(
        card_id=card_id,
        error_code=body["errorCode"],
        error=f"cards[{index}].{body['error']}" if field else body["error"],
        field=f"cards[{index}].{field}" if field else f"cards[{index}]",
    )
