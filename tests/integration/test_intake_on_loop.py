"""Groups led from the event loop commit on it (db/intake_on_loop.py), and never hold it waiting.

Each test runs a ticker beside the orders: a coroutine that counts while the loop is free. A
loop held by a group waiting for the database would stop it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from sqlalchemy import text

from issuance.api.errors import database_unavailable
from issuance.db.engine import make_engine
from issuance.db.intake_on_loop import intake_on_loop
from issuance.db.models import AuditRow, OrderRow
from issuance.db.unit_of_work import sqlite_writer_lock
from issuance.domain.audit import PLATFORM
from issuance.domain.errors import Conflict, InvalidRequest
from issuance.platform import Platform
from issuance.services.bulk_placing import BulkIntake
from issuance.services.grouped_ordering import Commit, GroupedOrdering, OnLoop
from issuance.services.ordering import Clock, Placement, PlaceOrder
from tests.factories import count_rows, new_card_id, place_command

T = TypeVar("T")


def _grouped(platform: Platform) -> tuple[GroupedOrdering, list[int]]:
    """The platform's grouped ordering; and the threads its committer path opened intakes on."""
    committer_threads: list[int] = []

    def bulk() -> BulkIntake:
        committer_threads.append(threading.get_ident())
        return platform.bulk()

    ordering = GroupedOrdering(
        uow=platform.uow, bulk=bulk, clock=platform.clock, new_id=platform.new_id
    )
    return ordering, committer_threads


def _count(platform: Platform, model: Any, **where: str) -> int:
    return count_rows(platform.engine, model, **where)


class _Ticker:
    """Counts the loop's free moments, 1 ms apart."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.001)
            self.ticks += 1

    def __enter__(self) -> _Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


class _Held:
    """The database held by a thread until `release()` (or for 20 s at most).

    `by`: "writer lock", this process's SQLite writer lock; "another connection", a connection
    of another engine holding SQLite's write lock (BEGIN IMMEDIATE), or, on PostgreSQL, a lock
    on the orders table that every insert waits for.
    """

    def __init__(self, platform: Platform, by: str = "another connection") -> None:
        self._platform, self._by = platform, by
        self._held, self._released = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        if self._by == "writer lock":
            lock = sqlite_writer_lock(self._platform.engine)
            assert lock is not None
            with lock:
                self._held.set()
                self._released.wait(20)
            return
        other = make_engine(self._platform.engine.url.render_as_string(hide_password=False))
        with other.connect() as connection:
            if other.dialect.name == "postgresql":
                connection.execute(text("LOCK TABLE orders IN EXCLUSIVE MODE"))
            else:
                connection.execute(text("SELECT 1"))  # within BEGIN IMMEDIATE: the write lock
            self._held.set()
            self._released.wait(20)
            connection.rollback()
        other.dispose()

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> _Held:
        self._thread.start()
        assert self._held.wait(10), "the database was never held"
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
        self._thread.join()


async def _place_while_held(
    ordering: GroupedOrdering, commands: list[PlaceOrder], on_loop: OnLoop, held: _Held
) -> tuple[int, list[Placement | BaseException]]:
    """Place `commands` while `held`; the loop's free ticks in the 300 ms before the release."""
    with _Ticker() as ticker:
        placing = asyncio.ensure_future(_gather(ordering, commands, on_loop))
        await asyncio.sleep(0.3)
        assert not placing.done()  # the orders wait for the database
        ticks = ticker.ticks
        held.release()
        return ticks, await placing


async def _gather(
    ordering: GroupedOrdering, commands: list[PlaceOrder], on_loop: OnLoop
) -> list[Placement | BaseException]:
    placing = [ordering.place_async(cmd, actor=PLATFORM, on_loop=on_loop) for cmd in commands]
    return list(await asyncio.wait_for(asyncio.gather(*placing, return_exceptions=True), 20))


def _on_loop(platform: Platform, scenario: Callable[[OnLoop], Awaitable[T]]) -> T:
    async def run() -> T:
        clock_blocks = platform.sandbox_clock is not None
        async with intake_on_loop(
            platform.engine, platform.statistics, clock_blocks=clock_blocks
        ) as on_loop:
            return await scenario(on_loop)

    return asyncio.run(run())


def test_orders_from_the_loop_commit_there_and_answer_as_alone(platform: Platform) -> None:
    ordering, committer_threads = _grouped(platform)
    busy, key = new_card_id(), f"req-{new_card_id()}"
    fresh = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(6)]
    commands = [
        *fresh,
        place_command(busy, key),
        place_command(busy, key),  # its replay
        place_command(busy, f"req-{new_card_id()}"),  # the card is in progress
        place_command(new_card_id(), None, product="NOPE"),  # not in the configuration
    ]

    async def scenario(on_loop: OnLoop) -> list[Placement | BaseException]:
        return await _gather(ordering, commands, on_loop)

    answers = _on_loop(platform, scenario)

    assert committer_threads == []  # not one group went to the committer thread
    assert ordering.grouped == len(commands)
    placed = answers[:6]
    assert all(isinstance(p, Placement) and not p.replayed for p in placed)
    accepted, replay = answers[6], answers[7]
    assert isinstance(accepted, Placement)
    assert replay == Placement(accepted.operation_id, replayed=True)
    assert [type(a) for a in answers[8:]] == [Conflict, InvalidRequest]
    for cmd, placement in zip(fresh, placed, strict=True):
        assert isinstance(placement, Placement)
        assert _count(platform, OrderRow, card_id=cmd.card_id) == 1
        assert _count(platform, AuditRow, operation_id=placement.operation_id) == 1
    assert _count(platform, OrderRow, card_id=busy) == 1


@pytest.mark.parametrize("holder", ["thread of this process", "another process"])
def test_sqlite_held_by_another_writer_sends_the_group_to_the_committer(
    platform: Platform, holder: str
) -> None:
    """The loop tries the database without waiting: held, the group waits on the committer
    thread, the loop serves on, and the orders are placed once the writer lets go."""
    if platform.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL groups await their connections on the loop")
    ordering, committer_threads = _grouped(platform)
    commands = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(4)]
    by = "writer lock" if holder == "thread of this process" else "another connection"

    async def scenario(on_loop: OnLoop) -> tuple[int, list[Placement | BaseException]]:
        with _Held(platform, by) as held:
            return await _place_while_held(ordering, commands, on_loop, held)

    ticks, answers = _on_loop(platform, scenario)

    assert ticks > 50  # the loop ran on while the database was held (300 ms)
    assert committer_threads  # the held group went to the committer thread
    assert all(isinstance(a, Placement) for a in answers)
    for cmd in commands:
        assert _count(platform, OrderRow, card_id=cmd.card_id) == 1


def test_postgresql_groups_wait_for_the_database_without_holding_the_loop(
    platform: Platform,
) -> None:
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite groups commit in one go, or go to the committer thread")
    ordering, committer_threads = _grouped(platform)
    commands = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(4)]

    async def scenario(on_loop: OnLoop) -> tuple[int, list[Placement | BaseException]]:
        with _Held(platform) as held:  # inserts wait for the lock on orders
            return await _place_while_held(ordering, commands, on_loop, held)

    ticks, answers = _on_loop(platform, scenario)

    assert ticks > 50
    assert committer_threads == []
    assert all(isinstance(a, Placement) for a in answers)
    for cmd in commands:
        assert _count(platform, OrderRow, card_id=cmd.card_id) == 1


def test_a_group_cancelled_on_the_loop_fails_its_orders_and_the_next_group_goes_on(
    platform: Platform,
) -> None:
    """A server stopping cancels the loop's tasks: the group's requests are answered with the
    cancellation rather than left waiting, and the queue finds its next leader."""
    ordering, _ = _grouped(platform)
    stuck = place_command(new_card_id(), f"req-{new_card_id()}")
    later = place_command(new_card_id(), f"req-{new_card_id()}")

    class Stuck:
        def __init__(self, real: OnLoop) -> None:
            self.real, self.entered, self.first = real, asyncio.Event(), True

        async def run(self, commit: Commit[T], clock: Clock) -> T:
            if self.first:
                self.first = False
                self.entered.set()
                await asyncio.Event().wait()  # until cancelled
            return await self.real.run(commit, clock)

    async def scenario(on_loop: OnLoop) -> tuple[BaseException | None, Placement]:
        stuck_on_loop = Stuck(on_loop)
        first = asyncio.ensure_future(
            ordering.place_async(stuck, actor=PLATFORM, on_loop=stuck_on_loop)
        )
        await asyncio.wait_for(stuck_on_loop.entered.wait(), 10)
        queued = asyncio.ensure_future(
            ordering.place_async(later, actor=PLATFORM, on_loop=stuck_on_loop)
        )
        await asyncio.sleep(0.05)
        [group_task] = ordering._tasks
        group_task.cancel()
        failure = (await asyncio.gather(first, return_exceptions=True))[0]
        return (
            failure if isinstance(failure, BaseException) else None,
            await asyncio.wait_for(queued, 10),
        )

    failure, placed = _on_loop(platform, scenario)

    assert isinstance(failure, asyncio.CancelledError)
    assert _count(platform, OrderRow, card_id=stuck.card_id) == 0  # never written
    assert _count(platform, OrderRow, operation_id=placed.operation_id) == 1


def test_postgresql_unreachable_from_the_loop_is_the_database_being_unavailable(
    platform: Platform,
) -> None:
    """The API answers it 503 DATABASE_UNAVAILABLE (api/errors.py), as on the committer path."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("an embedded database is never unreachable")
    ordering, _ = _grouped(platform)
    nowhere = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/test")  # nothing listens
    commands = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(2)]

    async def run() -> list[Placement | BaseException]:
        async with intake_on_loop(nowhere) as on_loop:
            return await _gather(ordering, commands, on_loop)

    answers = asyncio.run(run())

    assert all(isinstance(a, Exception) and database_unavailable(a) for a in answers), answers
    assert _count(platform, OrderRow, card_id=commands[0].card_id) == 0


def test_a_thread_group_hands_the_next_group_to_the_loop(platform: Platform) -> None:
    """Orders from a thread (the batch route, the CLI) and from the loop share the queue: the
    coroutines queued behind a thread's group commit as the next group, on the loop."""
    ordering, bulk_threads = _grouped(platform)
    first = place_command(new_card_id(), f"req-{new_card_id()}")
    rest = [place_command(new_card_id(), f"req-{new_card_id()}") for _ in range(3)]

    async def scenario(on_loop: OnLoop) -> tuple[Placement, list[Placement | BaseException]]:
        with _Held(platform) as held:  # the thread's group waits for it, in its thread
            by_thread = asyncio.ensure_future(
                asyncio.to_thread(ordering.place, first, actor=PLATFORM)
            )
            while not bulk_threads:  # the thread leads, and waits for the database
                await asyncio.sleep(0.005)
            placing = asyncio.ensure_future(_gather(ordering, rest, on_loop))
            while len(ordering._queue) < len(rest):
                await asyncio.sleep(0.005)
            held.release()
            answers = await placing
        return await by_thread, answers

    placed, answers = _on_loop(platform, scenario)

    assert len(bulk_threads) == 1  # the thread's group alone went through the committer path
    assert (ordering.groups, ordering.grouped) == (2, 4)
    assert all(isinstance(a, Placement) for a in answers)
    for cmd in [first, *rest]:
        assert _count(platform, OrderRow, card_id=cmd.card_id) == 1
    assert not placed.replayed


def test_a_request_whose_loop_closed_while_it_waited_is_led_by_the_committer(
    platform: Platform,
) -> None:
    """Its server stopped: the group it was to lead goes to the committer thread, and the queue
    moves on rather than waiting for a loop that will never run again."""
    ordering, bulk_threads = _grouped(platform)
    first = place_command(new_card_id(), f"req-{new_card_id()}")
    orphan = place_command(new_card_id(), f"req-{new_card_id()}")
    pool = ThreadPoolExecutor(1)

    async def queue_and_stop(on_loop: OnLoop) -> None:
        asyncio.get_running_loop().create_task(
            ordering.place_async(orphan, actor=PLATFORM, on_loop=on_loop)
        )
        while not ordering._queue:
            await asyncio.sleep(0.005)

    with _Held(platform):
        by_thread = pool.submit(ordering.place, first, actor=PLATFORM)  # leads, waits
        while not bulk_threads:
            time.sleep(0.005)
        _on_loop(platform, queue_and_stop)  # asyncio.run closes the loop, the order queued

    assert not by_thread.result(timeout=10).replayed
    deadline = time.monotonic() + 10
    while _count(platform, OrderRow, card_id=orphan.card_id) == 0:
        assert time.monotonic() < deadline, "the orphaned order was never placed"
        time.sleep(0.01)
    assert len(bulk_threads) == 2  # the thread's group, then the orphan's, both on threads
    later = pool.submit(ordering.place, place_command(new_card_id(), None), actor=PLATFORM)
    assert not later.result(timeout=10).replayed  # the queue did not stay leaderless
    pool.shutdown()
