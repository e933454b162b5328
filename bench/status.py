"""On-demand status with many orders stored: p50/p99 of productionStatus, next to the ceiling.

    .venv/bin/python bench/status.py [--database-url URL] [--api-processes P] [--orders N]
                                     [--rate R] [--seconds S] [--json PATH]

Takes about 6 minutes with a million orders on a quiet machine, most of it seeding (SQLite ~4
min, PostgreSQL COPY ~3 min; the bare table ~20 s; each server 2 + 5 + S seconds of load, S = 10
by default). On a machine shared with other work, seeding alone took 18 (SQLite) and 8 minutes.

1. N orders (default 1,000,000), each with its ACCEPTED event, are inserted straight into a new
   SQLite database (or the PostgreSQL database at --database-url, dropped and created first;
   rows go in with COPY), then `issuance serve --workers P` runs on it in a subprocess (sandbox
   configuration, simulator and in-server delivery off).
2. bench/driver.py, in its own process, reads
   GET /banking/v1/issuers/{issuerId}/physicalCards/{cardId}/productionStatus for cards drawn at
   random from a sample of the stored ones: a short saturation run (closed loop, for reference),
   then p50/p99 at a steady open-loop rate R.
3. The ceiling: bench/bare_intake_app.py on a table holding the same N cards, answering the same
   GET with one indexed SELECT, driven the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from delivery import free_port, operation  # bench/ is on the script's path
from intake import (
    ISSUER,
    ORDER,
    drive,
    prepare_platform,
    start_bare,
    start_platform,
    stop,
    token,
)
from intake import wait_ready as ready
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from issuance.db.models import EventRow, OrderRow
from issuance.platform import Platform
from issuance.settings import Settings

HERE = Path(__file__).parent
ISSUANCE = Path(sys.executable).parent / "issuance"
PATH = f"/banking/v1/issuers/{ISSUER}/physicalCards/@CARD@/productionStatus"


def seed(url: str, directory: Path, count: int, *, chunk: int = 10_000) -> list[str]:
    """`count` orders at CARD_PROD_REQUESTED, each with its ACCEPTED event; their card ids."""
    if make_url(url).get_backend_name() == "postgresql":
        return seed_postgresql(url, count, chunk=50_000)
    platform = Platform.build(Settings(database_url=url, sandbox=True, keys_dir=directory / "keys"))
    cards: list[str] = []
    started = time.perf_counter()
    connection = platform.engine.connect()
    # Random card ids land all over a dozen indexes: with SQLite's default 2 MB page cache a
    # million orders take 15 minutes on a busy machine, with 1 GB about 4.
    raw = connection.connection.driver_connection  # pragmas outside any transaction
    assert raw is not None
    raw.execute("PRAGMA cache_size=-1000000")
    raw.execute("PRAGMA synchronous=OFF")
    for start in range(0, count, chunk):
        now = datetime.now(UTC)
        batch = [f"s-{uuid.uuid4().hex[:20]}" for _ in range(min(chunk, count - start))]
        with connection.begin():
            connection.execute(
                insert(OrderRow),
                [
                    {
                        "operation_id": f"op-{card}",
                        "issuer_id": ISSUER,
                        "card_id": card,
                        "active_card_id": card,
                        "issuer_request_id": f"req-{card}",
                        "consumer_id": f"consumer-{card}",
                        "card_product_id": "DEMO-DEBIT",
                        "request_fingerprint": "0" * 64,
                        "status": "PENDING",
                        "production_status": "CARD_PROD_REQUESTED",
                        "start_time": now,
                        "due_date": now + timedelta(days=2),
                        "cancellable_until": now + timedelta(hours=1),
                        "sla_standing": "ON_TIME",
                        "request": request_of(card),
                        "updated_at": now,
                        "version": 1,
                    }
                    for card in batch
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
                    for card in batch
                ],
            )
        cards.extend(batch)
        if (start // chunk) % 20 == 19:
            rate = len(cards) / (time.perf_counter() - started)
            print(f"seeded {len(cards):,} orders ({rate:,.0f}/s)", file=sys.stderr)
    connection.close()
    platform.close()
    return cards


ORDER_COLUMNS = (
    "operation_id, issuer_id, card_id, active_card_id, issuer_request_id, consumer_id, "
    "card_product_id, request_fingerprint, status, production_status, start_time, due_date, "
    "cancellable_until, sla_standing, hold, materials, request, updated_at, version"
)
EVENT_COLUMNS = "issuer_id, card_id, operation_id, sequence, event_type, payload, occurred_at, recorded_at, txid"


def seed_postgresql(url: str, count: int, *, chunk: int) -> list[str]:
    """The same rows as `seed`, with COPY (a million orders in about two minutes)."""
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    cards: list[str] = []
    started = time.perf_counter()
    with psycopg.connect(conninfo) as connection:
        for start in range(0, count, chunk):
            now = datetime.now(UTC)
            batch = [f"s-{uuid.uuid4().hex[:20]}" for _ in range(min(chunk, count - start))]
            with connection.cursor() as cursor:
                with cursor.copy(f"COPY orders ({ORDER_COLUMNS}) FROM STDIN") as copy:
                    for card in batch:
                        copy.write_row(order_row(card, now))
                with cursor.copy(f"COPY events ({EVENT_COLUMNS}) FROM STDIN") as copy:
                    for card in batch:
                        payload = json.dumps(operation(card, 1, now))
                        copy.write_row(
                            (ISSUER, card, f"op-{card}", 1, "ACCEPTED", payload, now, now, 0)
                        )
                with cursor.copy(
                    "COPY cards (issuer_id, card_id, last_sequence, last_txid) FROM STDIN"
                ) as copy:
                    for card in batch:
                        copy.write_row((ISSUER, card, 1, 0))
            connection.commit()
            cards.extend(batch)
            rate = len(cards) / (time.perf_counter() - started)
            print(f"seeded {len(cards):,} orders ({rate:,.0f}/s)", file=sys.stderr)
    # What a database serving reads for a while looks like: hint bits and the visibility map set
    # (VACUUM; autovacuum may be off or behind), the seed's dirty pages written out (CHECKPOINT).
    # Without it the reads paid for the seed's write-back: p99 13.4 ms, against 7.9 and 6.6 in
    # the next two runs with it (this machine, the same hour).
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) orders, events, cards")
        connection.execute("CHECKPOINT")
    return cards


def order_row(card: str, now: datetime) -> tuple[Any, ...]:
    return (
        f"op-{card}",
        ISSUER,
        card,
        card,
        f"req-{card}",
        f"consumer-{card}",
        "DEMO-DEBIT",
        "0" * 64,
        "PENDING",
        "CARD_PROD_REQUESTED",
        now,
        now + timedelta(days=2),
        now + timedelta(hours=1),
        "ON_TIME",
        "NONE",
        "[]",
        json.dumps(request_of(card)),
        now,
        1,
    )


def request_of(card: str) -> dict[str, Any]:
    body = json.loads(json.dumps(ORDER).replace("@N@", card))
    body.pop("encryptedData")
    return dict(body)


def seed_bare(path: Path, cards: list[str]) -> None:
    database = sqlite3.connect(path)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute(
        "CREATE TABLE orders (operation_id TEXT PRIMARY KEY, issuer_id TEXT, "
        "card_id TEXT, request TEXT, pan_last4 TEXT, UNIQUE (issuer_id, card_id))"
    )
    database.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
        ((f"op-{c}", ISSUER, c, json.dumps(request_of(c)), "0002") for c in cards),
    )
    database.commit()
    database.close()


def measure(
    base: str,
    headers: dict[str, str],
    sample: list[str],
    args: argparse.Namespace,
    d: Path,
    server: int,
) -> dict[str, Any]:
    spec = {"base_url": base, "method": "GET", "path": PATH, "headers": headers, "cards": sample}
    [warm] = drive({**spec, "phases": [{"mode": "closed", "concurrency": 4, "seconds": 2}]}, d)
    saturation = {"mode": "closed", "concurrency": 16, "seconds": 5}
    [saturated] = drive({**spec, "phases": [saturation]}, d, server)
    steady_phase = {"mode": "open", "rate": args.rate, "seconds": args.seconds}
    [steady] = drive({**spec, "phases": [steady_phase]}, d, server)
    return {"warm_up": warm, "saturation": saturated, "steady": steady}


def figures_of(run: dict[str, Any], cpu: float) -> dict[str, Any]:
    steady = run["steady"]
    return {
        "rate": steady["rate"],
        "p50_ms": steady["p50_ms"],
        "p99_ms": steady["p99_ms"],
        "max_ms": steady["max_ms"],
        "non_2xx": {k: v for k, v in steady["statuses"].items() if not k.startswith("2")},
        "saturation_reads_per_second": run["saturation"]["per_second"],
        "server_cpu_ms_per_read": run["saturation"]["server_cpu_ms_per_request"],
        "server_cores_at_saturation": run["saturation"]["server_cores"],
        "driver_cpu_seconds_at_saturation": run["saturation"]["driver_cpu_seconds"],
        "server_cores_steady": steady["server_cores"],
        "server_cpu_seconds": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument(
        "--api-processes", type=int, default=1, help="server processes (uvicorn workers)"
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200, help="status reads/s (open loop)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    load_at_start = os.getloadavg()  # the machine is shared: say how busy it was

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        url = args.database_url or f"sqlite:///{directory / 'platform.db'}"
        prepare_platform(url, directory)
        started = time.perf_counter()
        cards = seed(url, directory, args.orders)
        seed_seconds = round(time.perf_counter() - started, 1)
        sample = random.sample(cards, min(20_000, len(cards)))

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_platform(url, directory, port, args.api_processes)
        try:
            ready(base, server)
            headers = {"authorization": f"Bearer {token(base)}"}
            platform_run = measure(base, headers, sample, args, directory, server.pid)
        finally:
            platform_cpu = stop(server)

        seed_bare(directory / "bare.db", cards)
        del cards
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        bare = start_bare(port, directory / "bare.db", args.api_processes)
        try:
            ready(base, bare)
            bare_run = measure(base, {}, sample, args, directory, bare.pid)
        finally:
            bare_cpu = stop(bare)

    platform_figures = figures_of(platform_run, platform_cpu)
    bare_figures = figures_of(bare_run, bare_cpu)
    figures = {
        "database": url.split(":", 1)[0].split("+")[0],
        "api_processes": args.api_processes,
        "load_average": [load_at_start[0], os.getloadavg()[0]],  # 1 min, at start and end
        "orders": args.orders,
        "seed_seconds": seed_seconds,
        "platform": platform_figures,
        "bare_endpoint": bare_figures,
        "p99_ratio_to_ceiling": round(platform_figures["p99_ms"] / bare_figures["p99_ms"], 2),
        "target_p99_ms": 5,
        "cpu_count": os.cpu_count(),
        "runs": {"platform": platform_run, "bare_endpoint": bare_run},
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "runs"}, indent=2))
    print(
        f"status ({figures['database']}, {args.api_processes} API process(es)) with "
        f"{args.orders:,} orders, {args.rate:,.0f} reads/s: p50 "
        f"{platform_figures['p50_ms']} ms, p99 {platform_figures['p99_ms']} ms; bare endpoint "
        f"p50 {bare_figures['p50_ms']} ms, p99 {bare_figures['p99_ms']} ms; p99 ratio "
        f"{figures['p99_ratio_to_ceiling']:.2f} (target p99 < 5 ms)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
