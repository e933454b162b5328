"""Ordering physical cards: one card, or a batch of up to 1000."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from issuance.api.bodies import UTF8_BOM, json_document, require_json
from issuance.api.deps import (
    CARD_ORDER_OPENAPI,
    DRY_RUN,
    CurrentIssuer,
    PlatformDep,
    actor_of,
    card_order_target,
)
from issuance.api.errors import error_body, schema_problems
from issuance.contract.operations import ErrorBody
from issuance.contract.orders import (
    MAX_CARDS_PER_BATCH,
    CardOrderRequest,
    CardsOrderResponse,
    OperationAccepted,
)
from issuance.db.batch_replies import SqlBatchReplies
from issuance.domain.errors import DomainError, InvalidRequest, Problem
from issuance.platform import Platform
from issuance.security.tokens import Principal
from issuance.services import ordering
from issuance.services.batch_ordering import (
    BatchOrdering,
    Item,
    refuse_duplicates,
    refused_line,
)
from issuance.services.intake import to_command, to_item

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
DryRun = Annotated[bool, Query(alias="dryRun", description=DRY_RUN)]


def _dry_run_answer(problems: list[Any]) -> JSONResponse:
    if problems:
        return JSONResponse(error_body(problems), status_code=400)
    return JSONResponse({"dryRun": True, "valid": True})


def _json_body(schema: str) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses its JSON itself (api/app.py adds the
    schema to the document's components)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


@router.post(
    "/{cardId}/operations:production",
    summary="Order a physical card",
    status_code=202,
    response_model=OperationAccepted,
    responses=ERRORS,
    openapi_extra=_json_body("CardOrderRequest") | CARD_ORDER_OPENAPI,
)
async def order_card(request: Request) -> JSONResponse:
    """Order one card. Idempotent on `issuerRequestId`: a retry answers `Idempotent-Replayed: true`."""
    # The busiest route reads its parameters itself: FastAPI's solving cost 5% (deps.py).
    issuer, card_id, dry_run = card_order_target(request)
    platform: Platform = request.app.state.platform
    body = card_order(await request.body(), request.headers.get("content-type", ""))
    # On the event loop: decrypting and sealing is work without I/O, and the order then waits
    # for its group without a thread (services/grouped_ordering.py).
    command = to_command(
        body, issuer_id=issuer.issuer_id, card_id=card_id, keys=platform.intake_keys
    )
    if dry_run:
        check = partial(ordering.dry_run, command, uow=platform.reader())
        problems = await to_thread.run_sync(check)
        return _dry_run_answer(problems)
    placement = await platform.ordering.place_async(
        command,
        actor=actor_of(issuer),
        on_loop=getattr(request.app.state, "intake_on_loop", None),  # set by the app's lifespan
    )
    headers = {"Idempotent-Replayed": "true"} if placement.replayed else {}
    return JSONResponse({"operationId": placement.operation_id}, status_code=202, headers=headers)


@router.post(
    "/operations:production",
    summary="Order physical cards (batch of 1 to 1000)",
    status_code=202,
    response_model=CardsOrderResponse,
    responses=ERRORS,
    openapi_extra=_json_body("CardsOrderRequest"),
)
async def order_cards(
    request: Request,
    issuer: CurrentIssuer,
    platform: PlatformDep,
    dry_run: DryRun = False,
) -> JSONResponse:
    """Order a batch: one line per card, in request order; one bad card refuses only itself.

    Idempotent per card (`issuerRequestId`) and per request: the same request again answers the
    same lines (`replayed: true`, header `Idempotent-Replayed: true`) and creates nothing.
    """
    body = json_document(await request.body(), request.headers.get("content-type", ""))
    return await to_thread.run_sync(partial(_order_cards, body, issuer, platform, dry_run))


def _order_cards(body: Any, issuer: Principal, platform: Platform, dry_run: bool) -> JSONResponse:
    """The batch, on a thread: it decrypts a thousand cards and writes them."""
    items = [
        to_item(
            raw, issuer_id=issuer.issuer_id, keys=platform.intake_keys, schema_problems=_problems
        )
        for raw in _cards(body)
    ]
    if dry_run:
        checked = enumerate(refuse_duplicates(items))
        lines = [_dry_run_line(index, item, platform) for index, item in checked]
        return JSONResponse({"cards": lines}, status_code=200)
    answer = BatchOrdering(
        uow=platform.uow,
        replies=SqlBatchReplies(platform.engine),
        clock=platform.clock,
        new_id=platform.new_id,
        actor=actor_of(issuer),
        digest_key=platform.intake_keys.fingerprint,
        bulk=platform.bulk,
    ).order(issuer.issuer_id, items)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return JSONResponse({"cards": answer.lines}, status_code=202, headers=headers)


def card_order(raw: bytes, content_type: str) -> CardOrderRequest:
    """The single-card body, parsed and validated in one pass by pydantic-core.

    FastAPI parses with `json.loads`, then validates the objects, with its own handling around
    each: one pass from the bytes costs an order 2% fewer instructions, 4.18 → 4.10 million
    (bench/intake_instructions.py). It refuses what FastAPI refused: no body
    (FIELD_MISSING), a body that is not an object (FIELD_INVALID_FORMAT), a media type other
    than JSON (now UNSUPPORTED_CONTENT_TYPE, as order files say it). Only UTF-8 is read (RFC
    8259; a leading byte order mark is skipped); other encodings, which `json.loads` guessed,
    are INVALID_JSON, as is nesting deeper than 200 levels.
    """
    require_json(raw, content_type)
    try:
        return CardOrderRequest.model_validate_json(raw.removeprefix(UTF8_BOM))
    except ValidationError as error:
        raise InvalidRequest.from_problems(_problems(error)) from None


def _problems(error: ValidationError) -> list[Problem]:
    return schema_problems([dict(e) for e in error.errors(include_input=False)])


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
    if not isinstance(cards, list) or not cards:
        raise InvalidRequest(
            "must be an array of 1 to 1000 cards", field="cards", code="FIELD_INVALID_FORMAT"
        )
    if len(cards) > MAX_CARDS_PER_BATCH:
        raise InvalidRequest(
            f"has {len(cards)} cards; at most {MAX_CARDS_PER_BATCH} per request",
            field="cards",
            code="FIELD_TOO_MANY_ITEMS",
        )
    return cards


def _dry_run_line(index: int, item: Item, platform: Platform) -> dict[str, Any]:
    if item.command is None:
        return refused_line(index, item.card_id, item.problems)
    try:
        problems = ordering.dry_run(item.command, uow=platform.reader())
    except DomainError as error:
        problems = list(error.all_problems)
    if problems:
        return refused_line(index, item.card_id, problems)
    return {"cardId": item.card_id}
