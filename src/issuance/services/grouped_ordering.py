"""Single-card orders committed in groups: what arrives while one group commits goes in the next.

Placed alone, an order costs about ten statements and their round trips (5 ms of server CPU on
SQLite, most of it SQLAlchemy), against the one insert of a bare endpoint. Under load, orders
that arrive together are placed together through the bulk path (services/bulk_placing.py): a
few statements for the whole group, the same checks, rows and answers as `place_order`.

No request waits for a timer. The first request to find no group in progress commits at once, a
group of one. Requests arriving meanwhile queue; when the group is done, the oldest of them is
woken to commit the queue as the next group (leader hand-off), so no request serves others for
longer than one group. The busier the server, the bigger the groups: at low load nothing changes.

An `async` route waits without holding a thread (`place_async`): its request joins the queue
with a future instead of an event, and when it has to lead, its group is committed by a task of
its own or on this service's committer thread, so no request's cancellation can leave the
queue leaderless. Given an `OnLoop` (db/intake_on_loop.py), the group commits on the event loop
itself: a committer thread shares the interpreter lock with the loop, and handing it back and
forth cost about a quarter of the server's CPU per order at saturation (bench/RESULTS.md).
SQLite commits there in one go when the database is free at once, and on the committer thread
when another writer holds it; PostgreSQL awaits its async connections, so the loop serves
other requests while the database works.

A group that collides with another writer (another process, or a card joining a container) is
answered card by card: each request then places its order alone with `place_order`, whose
answer is authoritative. Orders for a BULK container always take that path (joining a container
is the per-card path's), and so does everything when no bulk path is given.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import groupby
from typing import Protocol, TypeVar

from anyio import to_thread

from issuance.domain.audit import Actor
from issuance.services.bulk_placing import (
    BulkBatch,
    BulkIntake,
    Busy,
    Outcome,
    needs_card_by_card,
)
from issuance.services.ordering import Clock, Placement, PlaceOrder, place_order
from issuance.services.unit_of_work import Collision, UnitOfWork

MAX_GROUP = 200  # orders per transaction, as the batch API's chunks

T = TypeVar("T")
Commit = Callable[[Callable[[], BulkIntake], datetime], T]  # a group's commit: (bulk, now)


class OnLoop(Protocol):
    """Commits a group on the running event loop (db/intake_on_loop.py)."""

    async def run(self, commit: Commit[T], clock: Clock) -> T:
        """`commit(bulk, now)` on this loop, `bulk` opening this loop's transactions and `now`
        read from `clock` without holding the loop."""
        ...


@dataclass(eq=False)
class _Request:
    """One waiting order. `wake` tells it that it is answered; `lead`, that the next group starts
    with it (a waiting thread commits that group itself, a coroutine has the committer do it)."""

    cmd: PlaceOrder
    actor: Actor
    wake: Callable[[], None]
    lead: Callable[[], None]
    answered: bool = False
    outcome: Outcome | None = None
    alone: bool = False  # the group collided: place the order alone
    failure: BaseException | None = None


class GroupedOrdering:
    """`place_order` for concurrent requests, sharing transactions; safe from any thread."""

    def __init__(
        self,
        *,
        uow: Callable[[], UnitOfWork],
        bulk: Callable[[], BulkIntake] | None,
        clock: Clock,
        new_id: Callable[[], str],
    ) -> None:
        self.uow, self.bulk, self.clock, self.new_id = uow, bulk, clock, new_id
        self._lock = threading.Lock()
        self._queue: list[_Request] = []
        self._leading = False  # a group is being committed, or its leader is being woken
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="grouped-ordering")
        self._tasks: set[asyncio.Task[list[_Request]]] = set()  # groups committing on loops
        self.groups = 0  # groups committed, and the orders in them: their ratio is the mean size
        self.grouped = 0

    def place(self, cmd: PlaceOrder, *, actor: Actor) -> Placement:
        """Place from a thread, which waits for the answer (and may commit a group meanwhile)."""
        if self.bulk is None or needs_card_by_card([cmd]):
            return self._alone(cmd, actor)
        woken = threading.Event()
        request = _Request(cmd, actor, wake=woken.set, lead=woken.set)
        if not self._join(request):
            woken.wait()
        if not request.answered:  # woken to lead: the group starts with this request
            self._lead(self.bulk)
        placement = self._answer(request)
        return self._alone(cmd, actor) if placement is None else placement

    async def place_async(
        self, cmd: PlaceOrder, *, actor: Actor, on_loop: OnLoop | None = None
    ) -> Placement:
        """Place from the event loop, waiting for the answer without holding a thread; with
        `on_loop`, a group this request leads commits on the loop."""
        if self.bulk is None or needs_card_by_card([cmd]):
            return await to_thread.run_sync(self._alone, cmd, actor)
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()
        lead = (
            partial(self._lead_on_committer, self.bulk)
            if on_loop is None
            else partial(self._lead_on_loop, loop, on_loop)
        )
        request = _Request(
            cmd, actor, wake=partial(_resolve_from_any_thread, loop, answered), lead=lead
        )
        if self._join(request):
            request.lead()
        await answered
        placement = self._answer(request)
        if placement is None:
            return await to_thread.run_sync(self._alone, cmd, actor)
        return placement

    def _lead_on_committer(self, bulk: Callable[[], BulkIntake]) -> None:
        self._committer.submit(self._lead, bulk)

    def _join(self, request: _Request) -> bool:
        """Queue the request; whether it leads the next group, none being in progress."""
        with self._lock:
            self._queue.append(request)
            if self._leading:
                return False
            self._leading = True
            return True

    def _lead(self, bulk: Callable[[], BulkIntake]) -> None:
        group = self._next_group()
        try:
            self._count(group)
            self._commit(group, bulk)
        finally:
            self._done(group)

    def _lead_on_loop(self, loop: asyncio.AbstractEventLoop, on_loop: OnLoop) -> None:
        """Lead the next group from `loop`, or from the committer once that loop is closed."""
        try:
            loop.call_soon_threadsafe(self._start_on_loop, loop, on_loop)
        except RuntimeError:  # its server stopped while this request waited
            assert self.bulk is not None
            self._lead_on_committer(self.bulk)

    def _start_on_loop(self, loop: asyncio.AbstractEventLoop, on_loop: OnLoop) -> None:
        group = self._next_group()
        self._count(group)
        task = loop.create_task(on_loop.run(partial(self._commit, group), self.clock))
        self._tasks.add(task)  # a task only weakly referenced may be collected half-way
        task.add_done_callback(partial(self._after_loop, group))

    def _after_loop(self, group: list[_Request], task: asyncio.Task[list[_Request]]) -> None:
        self._tasks.discard(task)
        busy: list[_Request] = []
        if task.cancelled() or task.exception() is not None:  # the server stops, or worse
            error = asyncio.CancelledError() if task.cancelled() else task.exception()
            for request in group:
                if request.outcome is None and not request.alone and request.failure is None:
                    request.failure = error
        else:
            busy = task.result()
        if busy:  # another writer holds the database: the committer waits for it instead
            self._committer.submit(self._finish, group, busy)
        else:
            self._done(group)

    def _finish(self, group: list[_Request], busy: list[_Request]) -> None:
        try:
            assert self.bulk is not None
            self._commit(busy, self.bulk)
        finally:
            self._done(group)

    def _next_group(self) -> list[_Request]:
        with self._lock:
            group, self._queue[:MAX_GROUP] = self._queue[:MAX_GROUP], []
        return group

    def _count(self, group: list[_Request]) -> None:
        self.groups += 1
        self.grouped += len(group)

    def _done(self, group: list[_Request]) -> None:
        """Answer the group, and hand the next one to the oldest request waiting."""
        with self._lock:
            for request in group:
                request.answered = True
                request.wake()
            if self._queue:
                self._queue[0].lead()
            else:
                self._leading = False

    def _commit(
        self, group: list[_Request], bulk: Callable[[], BulkIntake], now: datetime | None = None
    ) -> list[_Request]:
        """One transaction per issuer and actor in the group (its audit names the actor), at
        `now` (else the clock's time at each); the requests whose transaction could not start
        at once (`Busy`), untouched."""
        busy: list[_Request] = []
        for _, same in groupby(group, key=lambda r: (r.cmd.issuer_id, r.actor)):
            members = list(same)
            try:
                with bulk() as intake:
                    batch = BulkBatch(
                        intake,
                        members[0].cmd.issuer_id,
                        [r.cmd for r in members],
                        at=now or self.clock(),
                        actor=members[0].actor,
                        new_id=self.new_id,
                    )
                    outcomes = [batch.take(r.cmd) for r in members]
                    batch.write()
            except Busy:
                busy.extend(members)
            except Collision:
                for request in members:
                    request.alone = True
            except BaseException as error:  # the database is down: each request says so
                for request in members:
                    request.failure = error
                if not isinstance(error, Exception):
                    raise
            else:
                for request, outcome in zip(members, outcomes, strict=True):
                    request.outcome = outcome
        return busy

    def _answer(self, request: _Request) -> Placement | None:
        """The request's answer from its group; None when it must be placed alone."""
        if request.failure is not None:
            raise request.failure
        if request.alone or request.outcome is None:
            return None
        outcome = request.outcome
        if outcome.error is not None:
            raise outcome.error
        assert outcome.operation_id is not None
        return Placement(outcome.operation_id, replayed=outcome.replayed)

    def _alone(self, cmd: PlaceOrder, actor: Actor) -> Placement:
        return place_order(cmd, uow=self.uow(), clock=self.clock, new_id=self.new_id, actor=actor)


def _resolve_from_any_thread(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    with suppress(RuntimeError):  # the loop is closed (the server stopped): nobody waits now
        loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # a cancelled request's order is still placed, as a thread's would be
        future.set_result(None)
