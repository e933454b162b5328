"""The delivery worker: claim due deliveries, POST them concurrently, settle them in groups.

At least once, honestly: a delivery is marked delivered only after a 2xx; a worker killed
between the POST and the settlement leaves its lease to expire, and the next claim sends the
notification again (receivers de-duplicate on `operationId` + `sequence`).

One asyncio loop per worker, with aiohttp (measured against httpx in bench/delivery.py). POSTs in
flight keep moving while the database works: on PostgreSQL claims and settlements run on the
loop itself, over psycopg's async connections (db/engine.py `make_async_engine`); on SQLite,
whose driver has no such mode, in one thread beside it. A thread shares the GIL with the loop:
beside one as busy as the database thread was, the loop lost 8-19% of its rate and spent 1-18 µs
more CPU per notification (bench/worker_path.py, medians of four runs). The claim and settle
code is the same either way: on the loop it runs inside SQLAlchemy's `greenlet_spawn`, the
bridge under `AsyncConnection.run_sync`. Per-card order holds because a claim never takes
sequence n+1 of a card while n is pending.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import structlog
import uvloop
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from issuance.db.engine import make_async_engine
from issuance.db.outbox import Claim, Settlement, claim, settle
from issuance.db.parking import PARK_EVERY, PARK_WINDOW, park_waiting
from issuance.db.sandbox import SqlChaosStore
from issuance.db.unit_of_work import SqlUnitOfWork, unit_of_work_factory
from issuance.delivery import metrics
from issuance.delivery.outbound_auth import TokenCache, TokenUnavailable
from issuance.delivery.sender import Sent, Target, message_id, prepare_encoded, send_async
from issuance.delivery.settler import Settler
from issuance.domain.chaos import Chaos
from issuance.domain.endpoint_health import HealthPolicy
from issuance.domain.parties import NotificationEndpoint
from issuance.domain.retry import Outcome, RetryPolicy, Verdict
from issuance.platform import Platform, utc_now

log = structlog.get_logger("issuance.delivery")
T = TypeVar("T")

Key = tuple[str, str]  # (issuer id, endpoint id)


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 100_000}"


@dataclass
class DeliveryWorker:
    platform: Platform
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    identity: str = field(default_factory=worker_id)
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], datetime] | None = None
    lease: timedelta | None = None  # default: the platform's settings
    concurrency: int = 64  # POSTs in flight at once
    capacity: int = 1024  # deliveries claimed and not yet settled
    idle_seconds: float = 0.05  # between two empty claims
    tokens: TokenCache = field(default_factory=TokenCache)  # for endpoints that want OAuth
    _gone: set[Key] = field(default_factory=set)  # answered 410 since the last claim
    _targets: dict[Key, tuple[NotificationEndpoint, Target]] = field(default_factory=dict)
    # SQLite: one thread for all database work (claims, settlements); two would only queue on
    # the write lock, in sleeps. PostgreSQL: an asyncio engine while the loop runs.
    _database: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="delivery-db")
    )
    _on_loop: AsyncEngine | None = None
    _reader_on_loop: Callable[[], SqlUnitOfWork] | None = None  # read-only units of work on it
    _anchor: tuple[datetime, float] = field(default_factory=lambda: (utc_now(), time.monotonic()))
    _park_at: float = float("-inf")  # monotonic; see db/parking.py

    # --- entry points ---

    def run_once(self, *, stopping: threading.Event | None = None) -> int:
        """One round, blocking: claim, send everything claimed, settle; deliveries attempted."""
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(self._session_round(stopping))

    def run(self, stopping: threading.Event) -> None:
        """Deliver until `stopping` is set, then finish the POSTs in flight and settle them."""
        with asyncio.Runner(
            loop_factory=uvloop.new_event_loop
        ) as runner:  # libuv: fewer µs per POST
            runner.run(self.pump(stopping))

    async def pump(self, stopping: threading.Event) -> None:
        """Keep up to `capacity` deliveries in flight, claiming more as POSTs are answered."""
        async with self._database_on_loop(), self._session() as session:
            settler = Settler(self._write_settlements)
            settler.start()
            flight = _Flight(self._post, self.concurrency, self.capacity)
            try:
                while not stopping.is_set():
                    claimed = 0
                    if flight.room >= self.capacity // 4:
                        claimed = await self._launch(session, settler, flight, stopping)
                    if flight.count:
                        await flight.landing(self.idle_seconds)
                    elif not claimed:
                        await asyncio.sleep(self.idle_seconds)
            finally:
                await flight.drain()
                await settler.close()

    # --- one round ---

    async def _session_round(self, stopping: threading.Event | None) -> int:
        async with self._database_on_loop(), self._session() as session:
            settler = Settler(self._write_settlements)
            settler.start()
            flight = _Flight(self._post, self.concurrency, self.capacity)
            await self._launch(session, settler, flight, stopping)
            attempted = await flight.drain()
            await settler.close()
            return attempted

    async def _launch(
        self,
        session: aiohttp.ClientSession,
        settler: Settler,
        flight: _Flight,
        stopping: threading.Event | None,
    ) -> int:
        claims, context = await self._in_database(self._claim, flight.room)
        batch = _Batch(session, settler, stopping, *context)
        for key, chunk in _chunks(claims, batch.endpoints):
            chaos = batch.chaos.get(key)
            if chaos is None:
                flight.add(batch, key, chunk)
            else:  # held back without a POST slot, never past what the lease allows
                timeout = self._timeout(batch.endpoints.get(key))
                room = (batch.lease_ends - self._now() - timeout).total_seconds() - 1
                flight.hold(max(0.0, min(chaos.delay(self.rng), room)), batch, key, chunk)
        return len(claims)

    def _claim(self, limit: int) -> tuple[list[Claim], _Context]:
        now = self._read_clock()
        lease = self.lease or timedelta(seconds=self.platform.settings.delivery_lease_seconds)
        endpoints = self._endpoints()
        chaos = SqlChaosStore(self._engine).all() if self.platform.settings.sandbox else {}
        unordered = frozenset(
            [k for k, e in endpoints.items() if e and not e.per_card_order]
            + [k for k, c in chaos.items() if c.reorder]
        )
        self._gone.clear()  # a 410 is settled by now: claiming skips disabled endpoints
        if time.monotonic() >= self._park_at:
            parked = park_waiting(self._engine, now=now, unordered=unordered)
            more = parked >= PARK_WINDOW // 2  # the window was full of them: walk on at once
            self._park_at = time.monotonic() + (0 if more else PARK_EVERY.total_seconds())
        claims = claim(
            self._engine,
            worker_id=self.identity,
            now=now,
            lease=lease,
            limit=limit,
            unordered=unordered,
        )
        if any(c.reorder for c in chaos.values()):
            self.rng.shuffle(claims)  # chaos: sequence n+1 may be posted before n
        missing = {(c.issuer_id, c.endpoint_id) for c in claims} - endpoints.keys()
        endpoints.update(dict.fromkeys(missing))
        return claims, (now + lease, endpoints, chaos)

    def _endpoints(self) -> dict[Key, NotificationEndpoint | None]:
        """Every issuer's endpoints, read at each claim: `config.issuers` validates an issuer
        only when its configuration version changed, so this is one small query when none did."""
        with (self._reader_on_loop or self.platform.reader)() as uow:
            issuers = uow.config.issuers()
        return {
            (issuer.issuer_id, e.endpoint_id): e
            for issuer in issuers
            for e in issuer.notification_endpoints
        }

    @staticmethod
    def _timeout(endpoint: NotificationEndpoint | None) -> timedelta:
        return timedelta(seconds=endpoint.timeout_seconds if endpoint else 0)

    async def _post(self, batch: _Batch, key: Key, chunk: list[Claim]) -> int:
        """Send one chunk and hand its settlements over; 0 when it was left to its lease."""
        endpoint, chaos = batch.endpoints.get(key), batch.chaos.get(key)
        attempted_at = self._now()
        if (
            (batch.stopping is not None and batch.stopping.is_set())
            or key in self._gone
            or attempted_at + self._timeout(endpoint) >= batch.lease_ends  # another worker's then
        ):
            return 0  # the claims free up when their lease ends
        sent = await self._send(batch.session, endpoint, chunk)
        if chaos is not None and chaos.copies(self.rng) > 1:
            await self._send(batch.session, endpoint, chunk)  # chaos: the same POST again
        if sent.outcome.status_code == 410:
            self._gone.add(key)
        batch.settler.add(self._settlements(chunk, sent, attempted_at))
        return len(chunk)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        endpoint: NotificationEndpoint | None,
        chunk: list[Claim],
    ) -> Sent:
        if endpoint is None:  # removed from the configuration: retried until it comes back
            return Sent(Outcome(error="endpoint no longer configured"), 0.0, "")
        bearer = None
        if endpoint.oauth is not None:
            try:
                bearer = await self.tokens.bearer(session, endpoint)
            except TokenUnavailable as error:
                return Sent(Outcome(error=f"OAuth: {error}"), 0.0, "")
        request = prepare_encoded(
            self._target(endpoint, chunk[0].issuer_id),
            [c.encoded for c in chunk],
            message=message_id([c.delivery_id for c in chunk]),
            bearer=bearer,
        )
        sent = await send_async(session, request)
        if sent.outcome.status_code == 401:
            self.tokens.forget(endpoint)
        metrics.POST_SECONDS.observe(sent.latency_ms / 1000)
        return sent

    def _target(self, endpoint: NotificationEndpoint, issuer_id: str) -> Target:
        """The endpoint's URL, HMAC keys and timeout, worked out again only when its
        configuration object changes (the issuer cache hands back the same one until then)."""
        key = (issuer_id, endpoint.endpoint_id)
        cached = self._targets.get(key)
        if cached is None or cached[0] is not endpoint:
            cached = self._targets[key] = (endpoint, Target.of(endpoint, issuer_id))
        return cached[1]

    def _settlements(
        self, chunk: list[Claim], sent: Sent, attempted_at: datetime
    ) -> list[Settlement]:
        settlements = []
        for item in chunk:
            decision = self.policy.decide(
                sent.outcome,
                attempts=item.attempts + 1,
                first_attempt_at=item.first_attempt_at or attempted_at,
                now=attempted_at,
                rng=self.rng,
            )
            metrics.ATTEMPTS_BY_VERDICT[decision.verdict].inc()
            if decision.verdict is Verdict.DELIVERED and item.attempts == 0:
                metrics.LAG_SECONDS.observe(
                    max(0.0, (attempted_at - item.recorded_at).total_seconds())
                    + sent.latency_ms / 1000
                )
            settlements.append(
                Settlement(item, sent.outcome, decision, attempted_at, sent.latency_ms)
            )
        return settlements

    def _settle(self, settlements: list[Settlement]) -> None:
        settings = self.platform.settings
        health = HealthPolicy(
            warn_after=timedelta(hours=settings.endpoint_warn_after_hours),
            disable_after=timedelta(hours=settings.endpoint_disable_after_hours),
        )
        settle(self._engine, settlements, worker_id=self.identity, health=health)

    async def _write_settlements(self, settlements: list[Settlement]) -> None:
        await self._in_database(self._settle, settlements)

    # --- where database work runs ---

    @asynccontextmanager
    async def _database_on_loop(self) -> AsyncIterator[None]:
        """On PostgreSQL, an asyncio engine for claims and settlements while the loop runs."""
        engine = self.platform.engine
        if engine.dialect.name != "postgresql":
            yield
            return
        self._on_loop = make_async_engine(engine.url.render_as_string(hide_password=False))
        self._reader_on_loop = unit_of_work_factory(self._on_loop.sync_engine, read_only=True)
        try:
            yield
        finally:
            on_loop, self._on_loop, self._reader_on_loop = self._on_loop, None, None
            await on_loop.dispose()

    @property
    def _engine(self) -> Engine:
        return self._on_loop.sync_engine if self._on_loop is not None else self.platform.engine

    async def _in_database(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` on the loop (PostgreSQL: its statements await psycopg), or on the
        database thread (SQLite)."""
        if self._on_loop is not None:
            return await greenlet_spawn(work, *args)
        return await asyncio.get_running_loop().run_in_executor(self._database, work, *args)

    def _now(self) -> datetime:
        """The given clock, or the platform's read once per claim and run on by the monotonic
        clock: the sandbox's reads the database, too dear for every POST."""
        if self.clock is not None:
            return self.clock()
        read, at = self._anchor
        return read + timedelta(seconds=time.monotonic() - at)

    def _read_clock(self) -> datetime:
        now = (self.clock or self.platform.clock)()
        self._anchor = (now, time.monotonic())
        return now

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=300)
        return aiohttp.ClientSession(connector=connector, auto_decompress=False)


class _Flight:
    """The chunks claimed and not yet answered, POSTed by a fixed set of sender coroutines.

    `concurrency` senders take chunks from a queue in turn, as the raw POST loop the benchmark
    compares with does. A task per POST, gated by a semaphore, cost ~60 µs more CPU per POST
    (177-198 against 116-129 µs, the worker's POST path in process against bench/receiver.py).
    """

    def __init__(self, post: _Post, concurrency: int, capacity: int) -> None:
        self.capacity = capacity
        self.count = 0  # deliveries queued, held back or being sent
        self.attempted = 0
        self._post = post
        self._queue: asyncio.Queue[_Chunk] = asyncio.Queue()
        self._landed = asyncio.Event()
        self._held: set[asyncio.Task[None]] = set()
        self._senders = [asyncio.create_task(self._send()) for _ in range(concurrency)]

    @property
    def room(self) -> int:
        return self.capacity - self.count

    def add(self, batch: _Batch, key: Key, chunk: list[Claim]) -> None:
        self.count += len(chunk)
        self._queue.put_nowait((batch, key, chunk))

    def hold(self, seconds: float, batch: _Batch, key: Key, chunk: list[Claim]) -> None:
        """Queue the chunk in `seconds` (sandbox chaos: a slow platform), holding no sender."""
        self.count += len(chunk)
        task = asyncio.create_task(self._queue_later(seconds, (batch, key, chunk)))
        self._held.add(task)
        task.add_done_callback(self._held.discard)

    async def _queue_later(self, seconds: float, item: _Chunk) -> None:
        await asyncio.sleep(seconds)
        self._queue.put_nowait(item)

    async def _send(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                attempted = await self._post(*item)  # `+= await` would read the total before
                self.attempted += attempted
            except Exception:  # the claims are sent again when their lease ends
                log.exception("posting failed", deliveries=len(item[2]))
            finally:
                self._land(len(item[2]))
                self._queue.task_done()

    def _land(self, deliveries: int) -> None:
        self.count -= deliveries
        if self.room >= self.capacity // 4 or not self.count:
            self._landed.set()

    async def landing(self, timeout: float) -> None:
        """Until there is room to claim again, or `timeout` seconds."""
        self._landed.clear()
        try:
            async with asyncio.timeout(timeout):
                await self._landed.wait()
        except TimeoutError:
            pass

    async def drain(self) -> int:
        """Send what is queued or held back, stop the senders; the deliveries attempted."""
        while self._held:
            await asyncio.gather(*self._held)
        await self._queue.join()
        for sender in self._senders:
            sender.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        return self.attempted


_Context = tuple[datetime, dict[Key, NotificationEndpoint | None], dict[Key, Chaos]]


@dataclass(frozen=True, slots=True)
class _Batch:
    """What the POSTs of one claim share."""

    session: aiohttp.ClientSession
    settler: Settler
    stopping: threading.Event | None
    lease_ends: datetime
    endpoints: dict[Key, NotificationEndpoint | None]
    chaos: dict[Key, Chaos]


_Chunk = tuple[_Batch, Key, list[Claim]]
_Post = Callable[[_Batch, Key, list[Claim]], Awaitable[int]]


def _chunks(
    claims: list[Claim], endpoints: dict[Key, NotificationEndpoint | None]
) -> Iterator[tuple[Key, list[Claim]]]:
    """Claims grouped by issuer and endpoint, cut at the endpoint's operations per call."""
    groups: dict[Key, list[Claim]] = defaultdict(list)
    for item in claims:
        groups[(item.issuer_id, item.endpoint_id)].append(item)
    for key, items in groups.items():
        endpoint = endpoints.get(key)
        size = endpoint.max_operations_per_call if endpoint else len(items)
        for start in range(0, len(items), size):
            yield key, items[start : start + size]


class DeliveryThread:
    """Runs a worker in a thread of the server process (the single-process sandbox)."""

    def __init__(self, platform: Platform, *, idle_seconds: float = 0.2) -> None:
        self.platform = platform
        self.idle_seconds = idle_seconds
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="delivery", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=15)

    def _run(self) -> None:
        worker = DeliveryWorker(self.platform, idle_seconds=self.idle_seconds)
        while not self.stopping.is_set():
            try:
                worker.run(self.stopping)
            except Exception:  # a failed pump must not stop delivery: start again
                log.exception("delivery failed")
                self.stopping.wait(1.0)
