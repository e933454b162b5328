"""Bring the issuer's store level with the platform: find what was missed, ask for it, apply it.

1. Note the gaps (`gaps.py`): sequence holes, and pending orders silent past their due date.
2. When the platform has a change feed, read it from the stored cursor: every event since the
   last run, in order, through the same rules as notifications (duplicates and stale events are
   recognised; the cursor is saved in the same commit as the events of its page).
3. For each card still with a hole, and each silent order, ask `productionStatus` (D1's
   on-demand API, so this also works against a real D1). Its answer is the card's current
   state: applied as authoritative, and every sequence up to the highest it shows is then
   accounted for (the intermediate events themselves are not available that way).
4. Hand every new change to the handler, if one is given (`dispatch.py`); otherwise they wait
   in the store's queue for the receiver's next dispatch.

Run it on a schedule (`issuance-issuer reconcile`, cron) or from the issuer's own scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread

from issuance.contract.feed import FEED_MAX_LIMIT
from issuance.kit import queue
from issuance.kit.client import AsyncIssuerClient
from issuance.kit.dispatch import Dispatcher, Handler
from issuance.kit.errors import BadRequest, ChangeFeedUnavailable, NotFound
from issuance.kit.gaps import (
    RECHECK_AFTER,
    SequenceGap,
    SilentOrder,
    mark_complete,
    sequence_gaps,
    silent_orders,
)
from issuance.kit.store import CardStore, Incoming, Outcome, Recorded
from issuance.kit.sync import IssuerClient

P = ParamSpec("P")
T = TypeVar("T")
MEMORY = (
    7 * 86_400.0
)  # seconds webhook-ids and handled changes are kept (past the sender's retries)


@dataclass
class ReconcileReport:
    issuer_id: str
    feed: str = "skipped"  # "read", or "unavailable" when the platform has none (a real D1)
    feed_operations: int = 0
    sequence_gaps: list[SequenceGap] = field(default_factory=list)  # found before reconciling
    silent_orders: list[SilentOrder] = field(default_factory=list)
    cards_checked: list[str] = field(default_factory=list)  # asked by productionStatus
    cards_unknown: list[str] = field(default_factory=list)  # the platform answered 404
    changes: int = 0  # real state changes found and stored
    handler_calls: int = 0
    remaining_gaps: list[SequenceGap] = field(default_factory=list)

    def count(self, recorded: Recorded) -> None:
        self.changes += recorded.count(Outcome.CHANGED)


async def _in_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """The store is synchronous; keep its I/O off the event loop the issuer may share."""
    return await anyio.to_thread.run_sync(partial(function, *args, **kwargs))


async def _follow_feed(
    store: CardStore, client: AsyncIssuerClient, report: ReconcileReport
) -> None:
    issuer_id = client.issuer_id
    cursor = await _in_thread(store.feed_cursor, issuer_id)
    while True:
        try:
            page = await client.changes(after=cursor, limit=FEED_MAX_LIMIT)
        except BadRequest:
            if cursor is None:
                raise
            cursor = None  # not a cursor of this feed (a reset platform): read it all again,
            continue  # which is safe, as every event already stored is recognised
        items = [Incoming.from_model(operation) for operation in page.operations]
        report.count(await _in_thread(store.record, issuer_id, items, feed_cursor=page.cursor))
        report.feed, report.feed_operations = "read", report.feed_operations + len(items)
        if not page.has_more or page.cursor == cursor:
            return
        cursor = page.cursor


async def _check_card(
    store: CardStore, client: AsyncIssuerClient, card_id: str, report: ReconcileReport
) -> None:
    try:
        operations = await client.production_status(card_id)
    except NotFound:
        report.cards_unknown.append(card_id)
        return
    items = [Incoming.from_model(operation) for operation in operations]
    report.count(await _in_thread(store.record, client.issuer_id, items, authoritative=True))
    report.cards_checked.append(card_id)
    sequences = [operation.sequence for operation in operations if operation.sequence]
    if sequences:
        await _in_thread(mark_complete, store, client.issuer_id, card_id, through=max(sequences))


async def reconcile(
    store: CardStore,
    client: AsyncIssuerClient,
    *,
    handler: Handler | None = None,
    use_feed: bool = True,
    recheck_after: float = RECHECK_AFTER,  # seconds
) -> ReconcileReport:
    """Find and fill the store's gaps for the client's issuer; what was found and done."""
    issuer_id = client.issuer_id
    report = ReconcileReport(issuer_id=issuer_id)
    report.sequence_gaps = await _in_thread(sequence_gaps, store, issuer_id)
    report.silent_orders = await _in_thread(
        silent_orders, store, issuer_id, recheck_after=recheck_after
    )
    if use_feed:
        try:
            await _follow_feed(store, client, report)
        except ChangeFeedUnavailable:
            report.feed = "unavailable"
    holes = await _in_thread(sequence_gaps, store, issuer_id)
    to_check = {gap.card_id for gap in holes} | {order.card_id for order in report.silent_orders}
    for card_id in sorted(to_check):
        await _check_card(store, client, card_id, report)
    report.remaining_gaps = await _in_thread(sequence_gaps, store, issuer_id)
    await _in_thread(store.forget_messages, older_than=store.clock() - MEMORY)
    await _in_thread(queue.forget_handled, store, older_than=store.clock() - MEMORY)
    if handler is not None:
        report.handler_calls = await Dispatcher(store, handler).dispatch_pending()
    return report


def reconcile_blocking(store: CardStore, client: IssuerClient, **options: Any) -> ReconcileReport:
    """`reconcile` for code without an event loop, on the blocking client's private loop."""

    async def run(async_client: AsyncIssuerClient) -> ReconcileReport:
        return await reconcile(store, async_client, **options)

    return client.run(run)
