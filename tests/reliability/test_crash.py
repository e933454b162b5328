"""Crash: the API and the worker SIGKILLed at random moments while an issuer orders cards.

An issuer's client places orders over real HTTP (retrying a connection error with the same body,
so the same `issuerRequestId`, as a D1 client does) while a killer SIGKILLs the API, the worker
or both and restarts them; the sandbox simulator keeps moving orders in the API process, so
state changes are written while processes die. Afterwards every order the client got a 202 for
exists exactly once, with the operationId it was told, and every event of the journal reached
the live receiver at least once.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from issuance.platform import Platform
from issuance.settings import Settings
from tests.factories import new_card_id
from tests.reliability.harness import (
    LoadResult,
    Processes,
    journal,
    orders_by_request,
    place_orders,
    point_demo_at,
    undelivered,
    wait_for,
)
from tests.reliability.profile import PROFILE
from tests.reliability.receiver import LiveReceiver
from tests.reliability.summary import Row, record


class Killer:
    """SIGKILLs at random moments: when the run passes randomly drawn numbers of 202s, after a
    random delay of up to `jitter` seconds; then restarts what it killed."""

    def __init__(self, processes: Processes, rng: random.Random, kills: int, orders: int) -> None:
        self.processes = processes
        self.rng = rng
        low, high = max(1, orders // 20), max(2, orders * 19 // 20)
        self.thresholds = sorted(rng.sample(range(low, high), min(kills, high - low)))
        first = ["api", "worker"]
        self.targets = [
            first[i] if i < len(first) else rng.choice(("api", "worker", "both"))
            for i in range(len(self.thresholds))
        ]
        self.done: list[str] = []
        self._moments: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def progress(self, accepted: int) -> None:
        with self._lock:
            while self.thresholds and accepted >= self.thresholds[0]:
                self.thresholds.pop(0)
                self._moments.put(self.targets.pop(0))

    def _run(self) -> None:
        while (target := self._moments.get()) is not None:
            threading.Event().wait(self.rng.uniform(0, 0.3))
            for which in ("api", "worker") if target == "both" else (target,):
                self.processes.kill(which)
            if target in ("api", "both"):
                self.processes.start_api()
            if target in ("worker", "both"):
                self.processes.start_worker()
            self.done.append(target)

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._moments.put(None)
        self._thread.join(timeout=120)


def test_kill_9_at_random_moments_loses_no_order_and_no_event(
    platform: Platform,
    settings: Settings,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    kind = platform.engine.dialect.name
    rng = random.Random(PROFILE.seed)
    cards = [new_card_id() for _ in range(PROFILE.orders)]
    load = LoadResult()
    processes = Processes(settings.database_url, settings.keys_dir, tmp_path)
    with LiveReceiver(seed=PROFILE.seed) as receiver:
        point_demo_at(platform, receiver.url)
        try:
            started = time.monotonic()
            processes.start_api()
            processes.start_worker()
            with Killer(processes, rng, PROFILE.kills, len(cards)) as killer:
                place_orders(
                    processes.base_url,
                    cards,
                    threads=PROFILE.client_threads,
                    result=load,
                    on_accepted=killer.progress,
                    deadline_seconds=300 + len(cards) * 0.2,
                )
            # The simulator stops with the API; then the worker drains the outbox. Moving the
            # sandbox clock on makes retries that wait for their backoff due at once.
            loaded = time.monotonic()
            assert processes.stop("api") in (0, -15)  # uvicorn re-raises the SIGTERM it handled
            assert platform.sandbox_clock is not None
            clock = platform.sandbox_clock

            def drained() -> bool:
                clock.advance(30)
                return undelivered(platform) == 0

            timeout = 120 + len(cards) * 0.05
            assert wait_for(drained, timeout=timeout, interval=1), f"{undelivered(platform)} left"
            assert processes.stop("worker") == 0
            drained_in = time.monotonic() - loaded
        finally:
            processes.close()

    events = journal(platform)
    delivered = receiver.delivered
    lost = events - set(delivered)
    duplicated = sum(count - 1 for count in delivered.values())
    record(
        record_property,
        Row(
            f"crash ({kind})",
            len(load.accepted),
            len(events),
            len(lost),
            duplicated,
            len(load.server_errors),
            f"{len(killer.done)} kills ("
            + ", ".join(f"{n} {target}" for target, n in sorted(Counter(killer.done).items()))
            + f"), {load.retries} retries;"
            f" load {loaded - started:.0f} s, drain {drained_in:.0f} s",
        ),
    )
    assert len(killer.done) == min(PROFILE.kills, len(cards) * 9 // 10), "kills that never came"
    assert load.unexpected == []
    assert load.server_errors == []
    assert set(load.accepted) == set(cards)
    stored = orders_by_request(platform)
    for card_id, (request_id, operation_id) in load.accepted.items():
        assert stored.get(request_id) == [(card_id, operation_id)], card_id  # exactly once
    assert sum(len(found) for found in stored.values()) == len(cards)
    assert lost == set(), f"{len(lost)} events never reached the receiver"
    assert set(delivered) <= events, "the receiver got operations the journal does not hold"
