"""The change feed: every change of the issuer's cards after a cursor, for polling reconcilers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from issuance.api.deps import CurrentIssuer, PlatformDep
from issuance.api.routes.production import ERRORS
from issuance.contract.feed import FEED_DEFAULT_LIMIT, FEED_MAX_LIMIT, ChangeFeed
from issuance.contract.operations import ErrorBody
from issuance.db.feed import read_feed

FEED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ChangeFeed, "description": "The changes after the cursor, oldest first"},
    400: {
        "model": ErrorBody,
        "description": "`after` is not a cursor of this feed, or bad `limit`",
    },
    **{k: v for k, v in ERRORS.items() if k in (401, 403)},
}
After = Annotated[
    str | None,
    Query(description="The `cursor` of the previous page; absent: from the first change"),
]
Limit = Annotated[int, Query(ge=1, le=FEED_MAX_LIMIT, description="Most operations to return")]

router = APIRouter(prefix="/banking/v1/issuers/{issuerId}", tags=["Change feed"])


@router.get(
    "/operations",
    summary="Read the change feed",
    response_model=None,
    responses=FEED_RESPONSES,
)
def change_feed(
    issuer: CurrentIssuer,
    platform: PlatformDep,
    after: After = None,
    limit: Limit = FEED_DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Extension: the issuer's operations as notifications carried them, after `after`.

    Store the `cursor` and pass it back as `after`; with nothing new the same cursor comes back.
    A change appears once every older transaction has ended, so a cursor never passes a change
    still being committed (docs/d1-contract.md, "Change feed").
    """
    page = read_feed(platform.engine, issuer_id=issuer.issuer_id, after=after, limit=limit)
    return {"operations": page.operations, "cursor": page.cursor, "hasMore": page.has_more}
