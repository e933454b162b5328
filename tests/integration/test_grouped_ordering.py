"""Single orders committed in groups answer exactly as each would alone, on each database.

The first group is held open until the others have queued behind it, so the second group's
make-up is known rather than left to timing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select

from issuance.db.bulk import SqlBulkIntake
from issuance.db.models import AuditRow, OrderRow
from issuance.domain.audit import PLATFORM, Actor, ActorKind
from issuance.domain.errors import Conflict, IdempotencyMismatch, InvalidRequest
from issuance.platform import Platform
from issuance.services.grouped_ordering import GroupedOrdering
from issuance.services.ordering import Placement, PlaceOrder
from issuance.services.unit_of_work import Collision
from tests.factories import DEMO, count_rows, new_card_id, place_command

ISSUER_CLIENT = Actor(ActorKind.ISSUER, "client-1", DEMO)


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the requests never queued"
        time.sleep(0.002)


class _HeldFirstGroup:
    """A bulk factory whose first transaction waits until `queued` requests wait behind it."""

    def __init__(self, platform: Platform, ordering: Callable[[], GroupedOrdering]) -> None:
        self.platform, self.ordering = platform, ordering
        self.queued = 0
        self.opened = 0
        self.released = False  # once it is, the queue may empty before anyone looks

    def __call__(self) -> SqlBulkIntake:
        self.opened += 1
        if self.opened == 1:
            ordering = self.ordering()
            _until(lambda: len(ordering._queue) >= self.queued)
            self.released = True
        return self.intake()

    def intake(self) -> SqlBulkIntake:
        return SqlBulkIntake(self.platform.engine)


class _Losing(SqlBulkIntake):
    """A group that another writer beat to a card: its commit collides."""

    def commit(self) -> None:
        self._session.rollback()
        raise Collision("another writer took a card first")


_DOWN = RuntimeError("database unavailable")


class _Down(SqlBulkIntake):
    """A group whose database is gone."""

    def write(self, *_: Any) -> None:
        raise _DOWN


def _grouped(platform: Platform, bulk: Any) -> GroupedOrdering:
    return GroupedOrdering(
        uow=platform.uow, bulk=bulk, clock=platform.clock, new_id=platform.new_id
    )


def _place_together(
    ordering: GroupedOrdering,
    held: _HeldFirstGroup,
    first: PlaceOrder,
    rest: list[PlaceOrder],
    actor: Actor = PLATFORM,
) -> list[Future[Placement]]:
    """`first` leads a group; `rest` queue behind it in order, and form the next group."""
    held.queued = len(rest)
    pool = ThreadPoolExecutor(len(rest) + 1)
    futures = [pool.submit(ordering.place, first, actor=actor)]
    _until(lambda: held.opened >= 1)
    for n, cmd in enumerate(rest, start=1):
        futures.append(pool.submit(ordering.place, cmd, actor=actor))
        _until(lambda: len(ordering._queue) >= n or held.released)  # noqa: B023  in this order
    pool.shutdown(wait=True)
    return futures


def _count(platform: Platform, model: Any, **where: str) -> int:
    return count_rows(platform.engine, model, **where)


def test_orders_arriving_during_a_commit_are_placed_as_the_next_group(platform: Platform) -> None:
    held = _HeldFirstGroup(platform, lambda: ordering)
    ordering = _grouped(platform, held)
    commands = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(8)]

    futures = _place_together(ordering, held, commands[0], commands[1:])

    placements = [future.result() for future in futures]
    assert (ordering.groups, ordering.grouped) == (2, 8)  # the leader alone, then the 7 others
    assert len({p.operation_id for p in placements}) == 8
    assert not any(p.replayed for p in placements)
    for cmd, placement in zip(commands, placements, strict=True):
        assert _count(platform, OrderRow, card_id=cmd.card_id) == 1
        assert _count(platform, AuditRow, operation_id=placement.operation_id) == 1


def test_each_order_of_a_group_gets_the_answer_it_would_get_alone(platform: Platform) -> None:
    held = _HeldFirstGroup(platform, lambda: ordering)
    ordering = _grouped(platform, held)
    busy, key = new_card_id(), f"req-{new_card_id()}"
    leader = place_command(new_card_id(), f"req-{new_card_id()}")
    group = [
        place_command(busy, key),  # accepted
        place_command(busy, key),  # the same request again: its replay
        place_command(new_card_id(), key, fingerprint="b" * 64),  # the key, another order
        place_command(busy, f"req-{new_card_id()}"),  # the card is in progress
        place_command(new_card_id(), None, product="NOPE"),  # not in the configuration
    ]

    futures = _place_together(ordering, held, leader, group, actor=ISSUER_CLIENT)

    assert ordering.groups == 2
    accepted, replay = futures[1].result(), futures[2].result()
    assert replay == Placement(accepted.operation_id, replayed=True)
    errors = [future.exception() for future in futures[3:]]
    assert [type(e) for e in errors] == [IdempotencyMismatch, Conflict, InvalidRequest]
    assert [getattr(e, "code", None) for e in errors] == [
        "IDEMPOTENCY_KEY_REUSED",
        "ORDER_IN_PROGRESS",
        "CARD_PRODUCT_UNKNOWN",
    ]
    assert accepted.operation_id in str(errors[1])
    with platform.engine.connect() as connection:
        trail = connection.execute(
            select(AuditRow.action, AuditRow.actor_id).where(
                AuditRow.operation_id == accepted.operation_id
            )
        ).all()
    assert sorted(trail) == [("order.placed", "client-1"), ("order.replayed", "client-1")]


def test_a_group_that_collides_is_placed_order_by_order(platform: Platform) -> None:
    held = _HeldFirstGroup(platform, lambda: ordering)
    held.intake = lambda: _Losing(platform.engine)  # type: ignore[method-assign]
    ordering = _grouped(platform, held)
    commands = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(4)]

    futures = _place_together(ordering, held, commands[0], commands[1:])

    placements = [future.result() for future in futures]
    assert len({p.operation_id for p in placements}) == 4
    for cmd in commands:
        assert _count(platform, OrderRow, card_id=cmd.card_id) == 1


def test_a_failing_database_fails_every_order_of_the_group_and_the_next_group_goes_on(
    platform: Platform,
) -> None:
    held = _HeldFirstGroup(platform, lambda: ordering)
    held.intake = lambda: _Down(platform.engine)  # type: ignore[method-assign]
    ordering = _grouped(platform, held)
    commands = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(3)]

    futures = _place_together(ordering, held, commands[0], commands[1:])

    assert [future.exception() for future in futures] == [_DOWN] * 3
    held.intake = lambda: SqlBulkIntake(platform.engine)  # type: ignore[method-assign]
    placement = ordering.place(place_command(new_card_id(), None), actor=PLATFORM)
    assert not placement.replayed  # no request is left leading a group forever


def test_the_platform_places_through_groups(platform: Platform) -> None:
    cmd = place_command(new_card_id(), f"req-{new_card_id()}")

    first = platform.ordering.place(cmd, actor=PLATFORM)
    again = platform.ordering.place(cmd, actor=PLATFORM)

    assert again == Placement(first.operation_id, replayed=True)
    assert platform.ordering.groups == 2


@pytest.mark.parametrize("threads", [16])
def test_many_identical_requests_at_once_make_one_order(platform: Platform, threads: int) -> None:
    cmd = place_command(new_card_id(), f"req-{new_card_id()}")
    start = threading.Barrier(threads)

    def place(_: int) -> Placement:
        start.wait()
        return platform.ordering.place(cmd, actor=PLATFORM)

    with ThreadPoolExecutor(threads) as pool:
        placements = list(pool.map(place, range(threads)))

    assert len({p.operation_id for p in placements}) == 1
    assert sum(not p.replayed for p in placements) == 1
    assert _count(platform, OrderRow, card_id=cmd.card_id) == 1


# --- From the event loop: `place_async`, as the single-card route places -------------------


async def _eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the requests never queued"
        await asyncio.sleep(0.002)


async def _place_together_async(
    ordering: GroupedOrdering,
    held: _HeldFirstGroup,
    first: PlaceOrder,
    rest: list[PlaceOrder],
    actor: Actor = PLATFORM,
) -> list[asyncio.Task[Placement]]:
    """As `_place_together`, each request a coroutine: none of them holds a thread meanwhile."""
    held.queued = len(rest)
    tasks = [asyncio.create_task(ordering.place_async(first, actor=actor))]
    await _eventually(lambda: held.opened >= 1)
    for n, cmd in enumerate(rest, start=1):
        tasks.append(asyncio.create_task(ordering.place_async(cmd, actor=actor)))
        await _eventually(lambda: len(ordering._queue) >= n or held.released)  # noqa: B023  in this order
    await asyncio.wait(tasks, timeout=10)
    return tasks


def test_orders_placed_from_the_event_loop_are_grouped_and_answered_as_alone(
    platform: Platform,
) -> None:
    held = _HeldFirstGroup(platform, lambda: ordering)
    ordering = _grouped(platform, held)
    busy, key = new_card_id(), f"req-{new_card_id()}"
    leader = place_command(new_card_id(), f"req-{new_card_id()}")
    group = [
        place_command(busy, key),
        place_command(busy, key),  # its replay
        place_command(busy, f"req-{new_card_id()}"),  # the card is in progress
        place_command(new_card_id(), None, product="NOPE"),  # not in the configuration
    ]

    tasks = asyncio.run(_place_together_async(ordering, held, leader, group))

    assert (ordering.groups, ordering.grouped) == (2, 5)
    assert not tasks[0].result().replayed
    accepted, replay = tasks[1].result(), tasks[2].result()
    assert replay == Placement(accepted.operation_id, replayed=True)
    assert [type(t.exception()) for t in tasks[3:]] == [Conflict, InvalidRequest]
    assert _count(platform, OrderRow, card_id=busy) == 1


@pytest.mark.parametrize("leader", ["thread", "coroutine"])
def test_threads_and_coroutines_hand_the_next_group_to_each_other(
    platform: Platform, leader: str
) -> None:
    """A thread's group hands over to a coroutine (the committer leads) and the other way."""
    held = _HeldFirstGroup(platform, lambda: ordering)
    ordering = _grouped(platform, held)
    commands = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(5)]
    held.queued = 4
    threads = ThreadPoolExecutor(3)

    async def scenario() -> list[Placement]:
        loop = asyncio.get_running_loop()
        if leader == "thread":
            first = asyncio.wrap_future(threads.submit(ordering.place, commands[0], actor=PLATFORM))
        else:
            first = asyncio.ensure_future(ordering.place_async(commands[0], actor=PLATFORM))
        await _eventually(lambda: held.opened >= 1)
        waiting: list[asyncio.Future[Placement]] = []
        for n, cmd in enumerate(commands[1:], start=1):  # coroutine, thread, coroutine, thread
            if n % 2:
                waiting.append(asyncio.ensure_future(ordering.place_async(cmd, actor=PLATFORM)))
            else:
                place = partial(ordering.place, cmd, actor=PLATFORM)
                waiting.append(asyncio.wrap_future(threads.submit(place), loop=loop))
            await _eventually(lambda: len(ordering._queue) >= n or held.released)  # noqa: B023
        return list(await asyncio.wait_for(asyncio.gather(first, *waiting), timeout=10))

    placements = asyncio.run(scenario())
    threads.shutdown()

    assert (ordering.groups, ordering.grouped) == (2, 5)
    assert len({p.operation_id for p in placements}) == 5
    for cmd in commands:
        assert _count(platform, OrderRow, card_id=cmd.card_id) == 1


def test_a_cancelled_coroutine_that_was_to_lead_leaves_no_queue_behind(platform: Platform) -> None:
    """Its group is the committer's, not the coroutine's: the others are answered, and the
    cancelled request's order is placed all the same, as a thread's would be."""
    held = _HeldFirstGroup(platform, lambda: ordering)
    ordering = _grouped(platform, held)
    commands = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(3)]

    async def scenario() -> list[asyncio.Task[Placement]]:
        held.queued = 2
        tasks = [asyncio.create_task(ordering.place_async(commands[0], actor=PLATFORM))]
        await _eventually(lambda: held.opened >= 1)
        for n, cmd in enumerate(commands[1:], start=1):
            tasks.append(asyncio.create_task(ordering.place_async(cmd, actor=PLATFORM)))
            await _eventually(lambda: len(ordering._queue) >= n or held.released)  # noqa: B023
        tasks[1].cancel()  # the head of the next group: the one that would have led it
        await asyncio.wait(tasks, timeout=10)
        return tasks

    tasks = asyncio.run(scenario())

    assert tasks[1].cancelled()
    assert not tasks[2].result().replayed
    assert ordering.groups == 2
    for cmd in commands:
        assert _count(platform, OrderRow, card_id=cmd.card_id) == 1


def test_a_colliding_or_failing_group_answers_each_coroutine_as_a_thread(
    platform: Platform,
) -> None:
    collided = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(3)]
    held = _HeldFirstGroup(platform, lambda: ordering)
    held.intake = lambda: _Losing(platform.engine)  # type: ignore[method-assign]
    ordering = _grouped(platform, held)
    tasks = asyncio.run(_place_together_async(ordering, held, collided[0], collided[1:]))
    assert len({t.result().operation_id for t in tasks}) == 3  # each placed alone
    for cmd in collided:
        assert _count(platform, OrderRow, card_id=cmd.card_id) == 1

    failed = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(3)]
    held = _HeldFirstGroup(platform, lambda: ordering)
    held.intake = lambda: _Down(platform.engine)  # type: ignore[method-assign]
    ordering = _grouped(platform, held)
    tasks = asyncio.run(_place_together_async(ordering, held, failed[0], failed[1:]))
    assert [t.exception() for t in tasks] == [_DOWN] * 3
    held.intake = lambda: SqlBulkIntake(platform.engine)  # type: ignore[method-assign]
    later = asyncio.run(ordering.place_async(place_command(new_card_id(), None), actor=PLATFORM))
    assert not later.replayed
