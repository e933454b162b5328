"""The handler: once per real change, after the commit, in order per card, again after a crash."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from issuance.kit import CardChange, CardStore, Dispatcher, Receiver, create_receiver_app
from issuance.kit.queue import claim, pending
from issuance.kit.store import Incoming, Outcome
from tests.kit.conftest import ISSUER, SECRET, Clock, new_card, operation

pytestmark = pytest.mark.asyncio


def reports(card: str, *steps: str, first: int = 1) -> list[Incoming]:
    return [
        Incoming.of(operation(card, step, sequence=first + index))
        for index, step in enumerate(steps)
    ]


async def test_a_change_stored_before_a_crash_is_handled_at_the_next_start(
    store: CardStore,
) -> None:
    """Store, then call: the process died after the commit, before the handler ran."""
    card = new_card()
    store.record(ISSUER, reports(card, "CARD_PROD_REQUESTED", "DATA_PREPARED"))
    assert pending(store) == 2
    seen: list[str] = []
    receiver = Receiver(
        store, lambda c: seen.append(c.status), issuer_ids={ISSUER}, secrets=[SECRET]
    )
    app = create_receiver_app(receiver)
    async with app.router.lifespan_context(app):
        assert seen == ["CARD_PROD_REQUESTED", "DATA_PREPARED"]
    assert pending(store) == 0


async def test_a_failing_handler_is_called_again_later_and_its_card_waits(
    store: CardStore, clock: Clock
) -> None:
    first, second = new_card(), new_card()
    calls: list[tuple[str, str]] = []
    failures = {first: 1}

    def handler(change: CardChange) -> None:
        calls.append((change.card_id, change.status))
        if failures.get(change.card_id):
            failures[change.card_id] -= 1
            raise RuntimeError("the issuer's core banking is down")

    store.record(ISSUER, reports(first, "CARD_PROD_REQUESTED", "DATA_PREPARED"))
    store.record(ISSUER, reports(second, "CARD_PROD_REQUESTED"))
    dispatcher = Dispatcher(store, handler)
    assert await dispatcher.dispatch_pending() == 1  # the second card only
    assert calls == [(first, "CARD_PROD_REQUESTED"), (second, "CARD_PROD_REQUESTED")]
    assert await dispatcher.dispatch_pending() == 0  # backing off: nothing is ready
    clock.advance(3)
    assert await dispatcher.dispatch_pending() == 2
    assert calls[2:] == [(first, "CARD_PROD_REQUESTED"), (first, "DATA_PREPARED")]
    assert pending(store) == 0


async def test_an_async_handler_is_awaited(store: CardStore) -> None:
    seen: list[int | None] = []

    async def handler(change: CardChange) -> None:
        await asyncio.sleep(0)
        seen.append(change.operation.sequence)

    store.record(ISSUER, reports(new_card(), "CARD_PROD_REQUESTED", "DATA_PREPARED"))
    assert await Dispatcher(store, handler).dispatch_pending() == 2
    assert seen == [1, 2]


async def test_a_claimed_change_is_not_handed_twice_until_its_lease_ends(
    store: CardStore, clock: Clock
) -> None:
    store.record(ISSUER, reports(new_card(), "CARD_PROD_REQUESTED"))
    assert len(claim(store, lease=60)) == 1
    assert claim(store, lease=60) == []  # another dispatcher finds nothing
    clock.advance(61)  # the first dispatcher died
    assert len(claim(store, lease=60)) == 1


async def test_concurrent_deliveries_of_the_same_reports_make_one_change_each(
    store: CardStore,
) -> None:
    """Duplicates racing in on several threads (connections): one change per real change."""
    card = new_card()
    steps = ["CARD_PROD_REQUESTED", "DATA_PREPARED", "CARD_PROD_READY", "CARD_PROD_ONGOING"]
    batches = [reports(card, *steps)[index:] for index in range(len(steps))] * 3
    start = threading.Barrier(len(batches))

    def deliver(batch: list[Incoming]) -> list[Outcome]:
        start.wait()
        return store.record(ISSUER, list(reversed(batch))).outcomes

    with ThreadPoolExecutor(len(batches)) as pool:
        outcomes = [o for result in pool.map(deliver, batches) for o in result]
    seen: list[int | None] = []
    await Dispatcher(store, lambda c: seen.append(c.operation.sequence)).dispatch_pending()
    [stored] = store.operations(ISSUER, card)
    assert stored.sequence == 4
    assert outcomes.count(Outcome.DUPLICATE) == sum(map(len, batches)) - 4
    assert len(seen) == outcomes.count(Outcome.CHANGED) >= 1
    assert seen == sorted(s for s in seen if s is not None)  # each numbered, in order
    assert seen[-1] == 4


async def test_concurrent_dispatchers_call_the_handler_once_per_change_in_card_order(
    store: CardStore,
) -> None:
    cards = [new_card() for _ in range(15)]
    for card in cards:
        store.record(
            ISSUER, reports(card, "CARD_PROD_REQUESTED", "DATA_PREPARED", "CARD_PROD_READY")
        )
    seen: list[tuple[str, int | None]] = []

    async def handler(change: CardChange) -> None:
        await asyncio.sleep(0.001)
        seen.append((change.card_id, change.operation.sequence))

    dispatchers = [Dispatcher(store, handler) for _ in range(4)]
    calls = await asyncio.gather(*(d.dispatch_pending(limit=5) for d in dispatchers))
    assert sum(calls) == len(seen) == 45
    assert sorted(seen) == sorted({(card, n) for card in cards for n in (1, 2, 3)})
    for card in cards:
        assert [n for c, n in seen if c == card] == [1, 2, 3]
