"""Group commit for settlements: whatever finished while the last write ran goes in the next one.

Under light load each POST is settled on its own, at once; under heavy load hundreds share one
transaction. A crash loses at most the settlements not yet written, and those deliveries are sent
again when their lease ends: at least once, never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from issuance.db.outbox import Settlement

log = structlog.get_logger("issuance.delivery")


class Settler:
    def __init__(self, write: Callable[[list[Settlement]], Awaitable[None]]) -> None:
        self._write = write  # the worker's: on its database thread, or on the loop (PostgreSQL)
        self._pending: list[Settlement] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def add(self, settlements: list[Settlement]) -> None:
        self._pending.extend(settlements)
        self._wake.set()

    async def close(self) -> None:
        """Write what is left, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if batch:
                try:
                    await self._write(batch)
                except Exception:  # the leases run out and the deliveries are sent again
                    log.exception("settling failed", deliveries=len(batch))
            if self._closing and not self._pending:
                return
