"""The worker's senders: a fixed number of POSTs at once, none lost to a failing one."""

from __future__ import annotations

import asyncio
from typing import Any

from issuance.delivery.worker import Key, _Flight

BATCH: Any = None  # what the POSTs of one claim share: unused by the stand-in
ISSUER = "DEMOBANK01"


def claims(count: int) -> list[Any]:
    return [object()] * count


def endpoint_key(endpoint: str) -> Key:
    return (ISSUER, endpoint)


class Posts:
    """A stand-in for `DeliveryWorker._post` that records what it was given and when."""

    def __init__(self, *, failing: str = "") -> None:
        self.failing = failing
        self.order: list[str] = []
        self.now = 0
        self.most = 0

    async def __call__(self, _batch: Any, key: Key, chunk: list[Any]) -> int:
        _, endpoint = key
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.01)
            if endpoint == self.failing:
                raise RuntimeError("a bug in one POST")
            self.order.append(endpoint)
            return len(chunk)
        finally:
            self.now -= 1


def test_no_more_posts_at_once_than_senders_and_a_failing_one_loses_nothing_else() -> None:
    async def run() -> tuple[Posts, int, int]:
        posts = Posts(failing="c3")
        flight = _Flight(posts, concurrency=3, capacity=100)
        for n in range(10):
            flight.add(BATCH, endpoint_key(f"c{n}"), claims(2))
        attempted = await flight.drain()
        return posts, attempted, flight.count

    posts, attempted, left = asyncio.run(run())

    assert posts.most == 3
    assert sorted(posts.order) == sorted(f"c{n}" for n in range(10) if n != 3)
    assert (attempted, left) == (18, 0)


def test_a_held_back_chunk_waits_without_a_sender() -> None:
    async def run() -> list[str]:
        posts = Posts()
        flight = _Flight(posts, concurrency=1, capacity=100)
        flight.hold(0.05, BATCH, endpoint_key("held"), claims(1))
        flight.add(BATCH, endpoint_key("next"), claims(1))
        assert flight.count == 2
        await flight.drain()
        return posts.order

    assert asyncio.run(run()) == ["next", "held"]
