"""The change feed: an issuer's operations after a cursor, to reconcile without webhooks."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from issuance.contract.common import WireModel
from issuance.contract.operations import Operation

FEED_DEFAULT_LIMIT = 100  # operations per page when `limit` is not given
FEED_MAX_LIMIT = 1000


class ChangeFeed(WireModel):
    """Body of `GET …/issuers/{issuerId}/operations`; unknown fields are ignored when read."""

    model_config = ConfigDict(extra="ignore")

    operations: list[Operation] = Field(
        description="Each change of the issuer's cards, as its notification carried it, oldest "
        "first (a card's changes in `sequence` order)"
    )
    cursor: str = Field(
        description="Opaque; pass it as `after` to read what follows. Safe to store: resuming "
        "from it neither skips nor repeats a change. Unchanged when nothing is new"
    )
    has_more: bool = Field(description="More changes are ready: read again at once")
