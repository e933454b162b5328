"""Notification delivery: notifications/s and state-change-to-received lag, next to the ceiling.

    .venv/bin/python bench/delivery.py [--database-url URL] [--events N] [--per-call K]
                                       [--workers W] [--json PATH]

1. Ceiling: the fastest raw POST loop we can write against the same receiver (bench/receiver.py),
   with aiohttp and with httpx, each on asyncio's loop and on uvloop, 32 requests in flight, each
   POST carrying one signed operation. The worker runs aiohttp on uvloop.
2. Throughput: N events for N cards are seeded into the outbox, then W `issuance worker`
   processes drain it; the rate is counted at the receiver, first arrival to last.
3. Lag: events are written at a steady rate while the workers run; the lag of each one is its
   arrival at the receiver minus its `recorded_at` (the commit of the state change).

The receiver, the workers and the database share this machine's cores: CPU seconds of each
worker are reported beside the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import uvloop
from sqlalchemy import create_engine, func, insert, make_url, select, text
from sqlalchemy.pool import NullPool

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.migrate import upgrade
from issuance.db.models import DeliveryRow, EventRow, OrderRow
from issuance.delivery.signing import signature_headers
from issuance.domain.parties import NotificationEndpoint
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.settings import Settings

HERE = Path(__file__).parent
ISSUANCE = Path(sys.executable).parent / "issuance"
ISSUER = "DEMOBANK01"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOTIFY = "/notifications/d1/v2/issuers/DEMOBANK01/cards"


def provenance() -> dict[str, str]:
    """When, on which kernel build and on which CPU a result was measured: bench/RESULTS.md
    lists them, as the files of one report may come from different days and machines (and a
    shared machine's speed moves)."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="minutes"),
        "kernel": platform.release(),
        "cpu": cpu_model(),
    }


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
        if line.startswith("model name")
    ]
    return names[0] if names else "unknown CPU"


def conninfo(url: str) -> str:
    """libpq's form of a SQLAlchemy PostgreSQL URL, for psycopg on its own."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def operation(card_id: str, sequence: int, now: datetime) -> dict[str, Any]:
    """A notification item of the size the platform sends (an order just accepted)."""
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "operationId": uuid.uuid4().hex[:24],
        "cardId": card_id,
        "type": "PRODUCE",
        "status": "PENDING",
        "startTime": stamp,
        "issuerRequestId": f"req-{card_id}",
        "details": {
            "status": "CARD_PROD_REQUESTED",
            "cardProductId": "DEMO-DEBIT",
            "dueDate": stamp,
            "slaStanding": "ON_TIME",
            "cancellableUntil": stamp,
            "onHold": False,
        },
        "sequence": sequence,
    }


# --- the ceiling ---


def signed_post() -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"operations": [operation("card-ceiling", 1, datetime.now(UTC))]}, separators=(",", ":")
    ).encode()
    headers = {
        "content-type": "application/json",
        **signature_headers((SECRET,), message_id="msg_x", timestamp=int(time.time()), body=body),
    }
    return body, headers


async def ceiling_aiohttp(url: str, seconds: float, concurrency: int) -> float:
    """POSTs/s; the loop's CPU per POST is left in `CEILING_CPU_US` (this process does nothing
    else meanwhile)."""
    body, headers = signed_post()
    cpu = time.process_time()
    done = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def loop() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
    CEILING_CPU_US[asyncio.get_running_loop().__class__.__module__] = round(
        (time.process_time() - cpu) / max(done, 1) * 1e6, 1
    )
    return done / (time.perf_counter() - started)


CEILING_CPU_US: dict[str, float] = {}  # event loop module → µs of CPU per POST


async def ceiling_httpx(url: str, seconds: float, concurrency: int) -> float:
    body, headers = signed_post()
    done = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def loop() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await client.post(url, content=body, headers=headers)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


# --- the platform ---


def fresh_database(url: str) -> None:
    """PostgreSQL: drop and create the named database, so every run starts empty."""
    target = make_url(url)
    if target.get_backend_name() != "postgresql":
        return
    server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    server.dispose()


def prepare_database(url: str, receiver: str, per_call: int) -> Platform:
    fresh_database(url)
    upgrade(url)
    platform = Platform.build(Settings(database_url=url, sandbox=True, keys_dir=HERE / ".keys"))
    config = read_config(SANDBOX_CONFIG)
    endpoint = NotificationEndpoint(
        endpoint_id="main",
        base_url=receiver,
        max_operations_per_call=per_call,
        signing_secrets=(SECRET,),
    )
    issuers = tuple(
        i.model_copy(update={"notification_endpoints": (endpoint,)}) if i.issuer_id == ISSUER else i
        for i in config.issuers
    )
    load_config(config.model_copy(update={"issuers": issuers}), uow=platform.uow())
    return platform


def seed(platform: Platform, count: int, *, chunk: int = 5000) -> dict[tuple[str, int], datetime]:
    """`count` new cards with one event each, due for delivery now; their recorded_at by key."""
    recorded: dict[tuple[str, int], datetime] = {}
    for start in range(0, count, chunk):
        now = datetime.now(UTC)
        cards = [f"bench-{uuid.uuid4().hex[:20]}" for _ in range(min(chunk, count - start))]
        with platform.engine.begin() as connection:
            connection.execute(
                insert(OrderRow),
                [
                    {
                        "operation_id": f"op-{card}",
                        "issuer_id": ISSUER,
                        "card_id": card,
                        "request_fingerprint": "0" * 64,
                        "status": "PENDING",
                        "production_status": "CARD_PROD_REQUESTED",
                        "start_time": now,
                        "request": {},
                        "updated_at": now,
                        "version": 1,
                    }
                    for card in cards
                ],
            )
            connection.execute(
                insert(EventRow),
                [
                    {
                        "issuer_id": ISSUER,
                        "card_id": card,
                        "operation_id": f"op-{card}",
                        "sequence": 1,
                        "event_type": "ACCEPTED",
                        "payload": operation(card, 1, now),
                        "occurred_at": now,
                        "recorded_at": now,
                    }
                    for card in cards
                ],
            )
            ids = connection.execute(
                select(EventRow.event_id, EventRow.card_id).where(EventRow.card_id.in_(cards))
            ).all()
            connection.execute(
                insert(DeliveryRow),
                [
                    {
                        "event_id": event_id,
                        "issuer_id": ISSUER,
                        "endpoint_id": "main",
                        "card_id": card,
                        "status": "PENDING",
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                    for event_id, card in ids
                ],
            )
        recorded.update({(card, 1): now for card in cards})
    return recorded


def start_workers(url: str, count: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    environment = {
        **os.environ,
        "ISSUANCE_DATABASE_URL": url,
        "ISSUANCE_KEYS_DIR": str(HERE / ".keys"),
    }
    return [
        subprocess.Popen(  # noqa: S603 (our own command line)
            [str(ISSUANCE), "worker", "--interval", "3600", "--concurrency", str(concurrency)],
            env=environment,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def spy(workers: list[subprocess.Popen[bytes]], folder: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy attached to each worker (`--profile`): raw stacks, for flamegraph.pl or grep."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(  # noqa: S603 (our own command line)
            [
                str(ISSUANCE.parent / "py-spy"),
                "record",
                "--threads",
                "--idle",
                "-r",
                "250",
                "--format",
                "raw",
                "-o",
                str(folder / f"worker-{number}.txt"),
                "-p",
                str(process.pid),
            ],
            stdout=subprocess.DEVNULL,
        )
        for number, process in enumerate(workers)
    ]


def stop(workers: list[subprocess.Popen[bytes]]) -> float:
    """SIGTERM each worker; their CPU seconds (user + system) in all."""
    for process in workers:
        process.send_signal(signal.SIGTERM)
    cpu = 0.0
    for process in workers:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
    return cpu


_POLL = httpx.Client(timeout=60)  # one client: a new one per poll costs an SSL context


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    """bench/receiver.py on a free port, once it answers; the process and its base URL."""
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, str(HERE / "receiver.py"), str(port)])  # noqa: S603
    for _ in range(100):
        try:
            received(receiver)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return server, receiver


def received(receiver: str) -> int:
    return int(_POLL.get(f"{receiver}/stats").json()["operations"])


def receiver_cpu(receiver: str) -> float:
    return float(_POLL.get(f"{receiver}/stats").json()["cpu_seconds"])


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) of a running process."""
    values = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(values[11]) + int(values[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu(url: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to the bench database, by pid (empty for
    SQLite, whose work is done inside the workers). Per backend, so other databases' sessions on
    a shared server count for nothing."""
    target = make_url(url)
    if target.get_backend_name() != "postgresql":
        return {}
    server = create_engine(target, poolclass=NullPool)
    with server.connect() as connection:
        pids = connection.scalars(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ).all()
    server.dispose()
    found = {}
    for pid in pids:
        try:
            found[pid] = process_cpu(pid)
        except (OSError, IndexError):
            continue  # gone meanwhile
    return found


def arrivals(receiver: str, directory: Path) -> list[tuple[str, int, float]]:
    path = directory / f"arrivals-{uuid.uuid4().hex}.json"
    httpx.post(f"{receiver}/dump", json={"path": str(path)}, timeout=60)
    return [tuple(item) for item in json.loads(path.read_text())]


def wait_for(receiver: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while received(receiver) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {received(receiver)} of {count} arrived in {timeout} s")
        time.sleep(0.2)


def throughput(
    platform: Platform, url: str, receiver: str, args: argparse.Namespace, directory: Path
) -> dict[str, Any]:
    httpx.post(f"{receiver}/reset")
    seed(platform, args.events)
    receiver_before, load_before = receiver_cpu(receiver), os.getloadavg()[0]
    started = time.perf_counter()
    workers = start_workers(url, args.workers, args.concurrency)
    spies = spy(workers, args.profile) if args.profile else []
    while not (early := received(receiver)):  # start-up (imports, configuration) is not delivery
        time.sleep(0.005)
    cpu_at_start = sum(process_cpu(process.pid) for process in workers)
    database_before = database_cpu(url)
    wait_for(receiver, args.events, timeout=600)
    database_after = database_cpu(url)
    for process in spies:
        process.send_signal(signal.SIGINT)
        process.wait()
    wall = time.perf_counter() - started
    cpu = stop(workers)
    receiver_used = receiver_cpu(receiver) - receiver_before
    database_used = (
        round(sum(cpu - database_before.get(pid, 0.0) for pid, cpu in database_after.items()), 2)
        if make_url(url).get_backend_name() == "postgresql"
        else None
    )
    times = sorted(at for _, _, at in arrivals(receiver, directory))
    span = times[-1] - times[0]
    with platform.engine.connect() as connection:
        pending = connection.scalar(
            select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status != "DELIVERED")
        )
    return {
        "events": args.events,
        "per_second": round(args.events / span, 1),
        "posts_per_second": round(args.events / args.per_call / span, 1),
        "wall_seconds_with_start_up": round(wall, 2),
        "worker_cpu_seconds": round(cpu, 2),
        # from the first arrival on: start-up excluded, shutdown (settling the last) included
        "worker_cpu_us_per_notification": round((cpu - cpu_at_start) / (args.events - early) * 1e6),
        "receiver_cpu_seconds": round(receiver_used, 2),
        # the bench database's backends from the first arrival to the last
        "database_cpu_seconds": database_used,
        "load_average_1min_before": round(load_before, 2),
        "undelivered_after": int(pending or 0),
        "duplicates": len(times) - args.events,
    }


def lag(
    platform: Platform, url: str, receiver: str, args: argparse.Namespace, directory: Path
) -> dict[str, Any]:
    """Events written at `args.rate` per second for `args.seconds`, in batches every 20 ms."""
    httpx.post(f"{receiver}/reset")
    workers = start_workers(url, args.workers, args.concurrency)
    time.sleep(2)  # start-up is not lag
    recorded: dict[tuple[str, int], datetime] = {}
    per_batch = max(1, round(args.rate * 0.02))
    started = time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        recorded.update(seed(platform, per_batch))
        time.sleep(max(0.0, 0.02 - (time.perf_counter() - started) % 0.02))
    wait_for(receiver, len(recorded), timeout=120)
    stop(workers)
    lags = sorted(
        (at - recorded[(card, sequence)].timestamp()) * 1000
        for card, sequence, at in arrivals(receiver, directory)
        if (card, sequence) in recorded
    )
    return {
        "rate_per_second": round(len(recorded) / args.seconds, 1),
        "events": len(recorded),
        "p50_ms": round(statistics.median(lags), 1),
        "p99_ms": round(lags[int(len(lags) * 0.99) - 1], 1),
        "max_ms": round(lags[-1], 1),
    }


def drain_round(
    platform: Platform,
    url: str,
    receiver: str,
    args: argparse.Namespace,
    directory: Path,
    other_ceilings: float,
) -> dict[str, Any]:
    """The fastest raw loop, then a drain right after it: a ratio from one stretch of time."""
    ceiling = round(uvloop.run(ceiling_aiohttp(receiver + NOTIFY, 5.0, 32)), 1)
    drained = throughput(platform, url, receiver, args, directory)
    best = max(ceiling, other_ceilings)
    ratio = round(drained["posts_per_second"] / best, 4)  # 0.3996 is not 0.4
    cpu = CEILING_CPU_US.get("uvloop")
    return {"ceiling": ceiling, "ceiling_cpu_us": cpu, "throughput": drained, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-call", type=int, default=1, help="operations per POST")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64, help="POSTs in flight per worker")
    parser.add_argument("--rate", type=float, default=500, help="events/s in the lag run")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--quick", action="store_true", help="aiohttp+uvloop ceiling only, no lag run"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy each drain worker, output here"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="ceiling-then-drain rounds; the median round (by ratio) is reported",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        url = args.database_url or f"sqlite:///{directory / 'bench.db'}"
        server, receiver = start_receiver()
        try:
            others = (
                ("aiohttp", ceiling_aiohttp, asyncio.run),
                ("httpx", ceiling_httpx, asyncio.run),
                ("httpx+uvloop", ceiling_httpx, uvloop.run),
            )
            ceilings = {
                name: round(run(loop(receiver + NOTIFY, 5.0, 32)), 1)
                for name, loop, run in others
                if not args.quick
            }
            platform = prepare_database(url, receiver, args.per_call)
            rounds = [
                drain_round(
                    platform, url, receiver, args, directory, max(ceilings.values(), default=0)
                )
                for _ in range(args.rounds)
            ]
            lagged = None if args.quick else lag(platform, url, receiver, args, directory)
            platform.close()
        finally:
            server.terminate()
            server.wait()
    # the machine is shared and each figure moves by a third from run to run: the median round
    middle = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    ceilings["aiohttp+uvloop"] = middle["ceiling"]
    drained = middle["throughput"]
    figures = {
        "measured": provenance(),
        "database": url.split(":", 1)[0],
        "workers": args.workers,
        "per_call": args.per_call,
        "ceiling_posts_per_second": ceilings,
        "throughput": drained,
        "ratio_to_ceiling": middle["ratio"],
        "rounds": [
            {
                "ceiling": r["ceiling"],
                "posts_per_second": r["throughput"]["posts_per_second"],
                "ratio": r["ratio"],
            }
            for r in rounds
        ],
        "ceiling_cpu_us_per_post": middle["ceiling_cpu_us"],
        "lag": lagged,
        "cpu_count": os.cpu_count(),
        "bench_cpu_seconds": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_utime
            + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
            1,
        ),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
