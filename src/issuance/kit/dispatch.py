"""Calls the issuer's handler for stored changes: after the commit, once each, in order per card.

The handler is any callable taking a `CardChange`, plain or `async`; a plain one runs in a worker
thread so that a slow handler never holds up the receiver's event loop. A handler that raises is
logged and called again later (2, 4, 8… s); its card's later changes wait behind it, so the
handler never sees a card's changes out of order.

Exactly once, and when it is at least once: a change is marked handled right after the handler
returns. If the process dies in between, the change is claimed again once its lease expires and
the handler is called a second time with the same `change_id`; no store can avoid that window
without the handler's help, so `change_id` is what a handler uses to make its effect idempotent.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from functools import partial

import anyio.to_thread

from issuance.kit import queue
from issuance.kit.models import CardChange
from issuance.kit.store import CardStore

log = logging.getLogger("issuance.kit")

Handler = Callable[[CardChange], Awaitable[None] | None]


def _is_async(handler: Handler) -> bool:
    call = getattr(handler, "__call__", None)  # noqa: B004 (an object with an async __call__)
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


class Dispatcher:
    """Drains the store's queue of changes into the handler."""

    def __init__(self, store: CardStore, handler: Handler, *, lease: float = queue.LEASE) -> None:
        self.store = store
        self.handler = handler
        self.lease = lease  # seconds; longer than the slowest handler call should take

    async def dispatch_pending(self, *, limit: int = 100) -> int:
        """Call the handler for every change ready now; how many calls succeeded."""
        succeeded = 0
        while True:
            claimed = await anyio.to_thread.run_sync(
                partial(queue.claim, self.store, limit=limit, lease=self.lease)
            )
            if not claimed:
                return succeeded
            for change in claimed:
                if await self._call(change):
                    await anyio.to_thread.run_sync(queue.mark_handled, self.store, change.change_id)
                    succeeded += 1
                else:
                    await anyio.to_thread.run_sync(queue.retry_later, self.store, change.change_id)

    async def _call(self, change: CardChange) -> bool:
        try:
            if _is_async(self.handler):
                result = self.handler(change)
            else:
                result = await anyio.to_thread.run_sync(self.handler, change)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception(
                "the change handler failed; it will be called again",
                extra={"change_id": change.change_id, "card_id": change.card_id},
            )
            return False
        return True
