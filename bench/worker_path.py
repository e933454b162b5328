"""Where the delivery worker's CPU goes: its POST path with the database taken out, beside the raw loop.

    .venv/bin/python bench/worker_path.py [--events N] [--rounds R] [--json PATH]

bench/delivery.py compares the worker with the fastest raw POST loop; this splits the gap, all
in this one process against bench/receiver.py, with no database at all:

1. raw loop: `ceiling_aiohttp` of bench/delivery.py on uvloop (32 POSTs in flight), CPU per POST.
2. worker, database stubbed: the real `DeliveryWorker.pump` (its senders, signing, message ids,
   retry decisions, metrics, the settler) with `_claim` handing out ready-made claims and
   `_settle` writing nothing, until N notifications are settled; CPU per notification.
3. the same beside a busy thread: a second thread holding the GIL about 13% of the time
   (0.3 ms of Python, then 2 ms asleep, as a thread waiting on the database does), the share of
   the worker's CPU a database thread had under load; CPU per notification without that
   thread's own CPU, so what is left is what contention for the GIL costs the event loop. This
   is why the worker claims and settles on its loop on PostgreSQL (SQLite keeps the thread).

Each is run R times in turns; the medians are reported with their ranges.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import uvloop
from delivery import (  # bench/ is on the script's path
    CEILING_CPU_US,
    ISSUER,
    NOTIFY,
    SECRET,
    ceiling_aiohttp,
    operation,
    provenance,
    start_receiver,
)

from issuance.db.outbox import Claim, Settlement
from issuance.delivery.worker import DeliveryWorker, _Context
from issuance.domain.parties import NotificationEndpoint
from issuance.platform import Platform

BUSY_SECONDS, ASLEEP_SECONDS = 0.0003, 0.002


class StubbedDatabaseWorker(DeliveryWorker):
    """The worker with claims made in memory and settlements dropped: its POST path alone."""

    def __init__(self, receiver: str, events: int) -> None:
        # the platform's clock is all the stubbed claims read of it
        super().__init__(cast(Platform, SimpleNamespace(clock=lambda: datetime.now(UTC))))
        self.endpoint = NotificationEndpoint(
            endpoint_id="main",
            base_url=receiver,
            signing_secrets=(SECRET,),
            max_operations_per_call=1,
        )
        now = datetime.now(UTC)
        self.claims = [
            Claim(
                delivery_id=number,
                event_id=number,
                issuer_id=ISSUER,
                endpoint_id="main",
                card_id=f"card-{number}",
                attempts=0,
                first_attempt_at=None,
                encoded=json.dumps(operation(f"card-{number}", 1, now)).encode(),
                recorded_at=now,
            )
            for number in range(events)
        ]
        self.handed = self.settled = 0
        self.done = threading.Event()

    @asynccontextmanager
    async def _database_on_loop(self) -> AsyncIterator[None]:
        yield  # no database: the stubs run on the worker's database thread, doing next to nothing

    def _claim(self, limit: int) -> tuple[list[Claim], _Context]:
        claims = self.claims[self.handed : self.handed + limit]
        self.handed += len(claims)
        lease_ends = self._read_clock() + timedelta(minutes=5)
        return claims, (lease_ends, {(ISSUER, "main"): self.endpoint}, {})

    def _settle(self, settlements: list[Settlement]) -> None:
        self.settled += len(settlements)
        if self.settled >= len(self.claims):
            self.done.set()


def busy_thread(stopping: threading.Event, spent: list[float]) -> None:
    """Python for BUSY_SECONDS, then asleep (GIL released) for ASLEEP_SECONDS, until stopped."""
    started = time.thread_time()
    while not stopping.is_set():
        until = time.perf_counter() + BUSY_SECONDS
        while time.perf_counter() < until:
            pass
        time.sleep(ASLEEP_SECONDS)
    spent.append(time.thread_time() - started)


def worker_run(receiver: str, events: int, *, busy: bool) -> dict[str, float]:
    """Notifications/s and CPU µs per notification of the stubbed worker (the busy thread's own
    CPU left out)."""
    worker = StubbedDatabaseWorker(receiver, events)
    stopping, spent = threading.Event(), cast(list[float], [])
    hog = threading.Thread(target=busy_thread, args=(stopping, spent)) if busy else None
    if hog is not None:
        hog.start()
    cpu, started = time.process_time(), time.perf_counter()
    worker.run(worker.done)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    stopping.set()
    if hog is not None:
        hog.join()
        cpu -= spent[0]
    return {
        "per_second": round(worker.settled / wall, 1),
        "cpu_us_per_notification": round(cpu / worker.settled * 1e6, 1),
        "busy_thread_cpu_share": round(spent[0] / wall, 2) if spent else 0.0,
    }


def raw_run(receiver: str, seconds: float) -> dict[str, float]:
    rate = uvloop.run(ceiling_aiohttp(receiver + NOTIFY, seconds, 32))
    return {"per_second": round(rate, 1), "cpu_us_per_post": CEILING_CPU_US["uvloop"]}


def median_of(runs: list[dict[str, float]], key: str) -> dict[str, float]:
    values = [run[key] for run in runs]
    return {"median": statistics.median(values), "low": min(values), "high": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="notifications per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, in turns")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()

    server, receiver = start_receiver()
    runs: dict[str, list[dict[str, float]]] = {"raw": [], "stubbed": [], "busy": []}
    try:
        for number in range(args.rounds):
            runs["raw"].append(raw_run(receiver, 3.0))
            runs["stubbed"].append(worker_run(receiver, args.events, busy=False))
            runs["busy"].append(worker_run(receiver, args.events, busy=True))
            print(f"round {number + 1}: " + json.dumps({k: v[-1] for k, v in runs.items()}))
    finally:
        server.terminate()
        server.wait()
    figures: dict[str, Any] = {
        "measured": provenance(),
        "events": args.events,
        "rounds": args.rounds,
        "busy_thread": {"busy_ms": BUSY_SECONDS * 1000, "asleep_ms": ASLEEP_SECONDS * 1000},
        "raw_loop": {
            "per_second": median_of(runs["raw"], "per_second"),
            "cpu_us_per_post": median_of(runs["raw"], "cpu_us_per_post"),
        },
        **{
            name: {
                "per_second": median_of(runs[name], "per_second"),
                "cpu_us_per_notification": median_of(runs[name], "cpu_us_per_notification"),
                "busy_thread_cpu_share": median_of(runs[name], "busy_thread_cpu_share"),
            }
            for name in ("stubbed", "busy")
        },
        "runs": runs,
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "runs"}, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
