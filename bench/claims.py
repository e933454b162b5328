"""A claim's cost with a backlog no claim may take, before and after parking (db/parking.py).

    .venv/bin/python bench/claims.py [--database-url URL] [--waiting N] [--due M] [--json PATH]

The outbox holds M new deliveries any worker may send, behind N that it may not: N cards whose
first event waits for a retry in an hour while their second event is due (an endpoint that is
down, its cards moving on). A claim walks the due deliveries longest due first, so it meets the
N first. Timed: claims of 256 as they were, parking (walks of 5,000 one after the other, as a
worker makes them), then the same claims again, and a walk with nothing left to park (the cost
a worker pays every 10 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from issuance.db.models import DeliveryRow, EventRow
from issuance.db.outbox import claim
from issuance.db.parking import PARK_WINDOW, park_waiting
from issuance.platform import Platform

sys.path.insert(0, str(Path(__file__).parent))
from delivery import ISSUER, prepare_database, provenance, seed  # a sibling script

LIMIT = 256


def write_waiting(platform: Platform, count: int, now: datetime) -> None:
    """`count` cards: the first event retried in an hour, the second due an hour ago."""
    seed(platform, count)
    with platform.engine.begin() as connection:
        connection.execute(
            update(DeliveryRow).values(next_attempt_at=now + timedelta(hours=1), attempts=1)
        )
        fronts = connection.execute(select(EventRow.card_id, EventRow.operation_id)).all()
        connection.execute(
            insert(EventRow),
            [
                {
                    "issuer_id": ISSUER,
                    "card_id": card,
                    "operation_id": operation_id,
                    "sequence": 2,
                    "event_type": "IN_PRODUCTION",
                    "payload": {"cardId": card},
                    "occurred_at": now,
                    "recorded_at": now,
                }
                for card, operation_id in fronts
            ],
        )
        seconds = connection.execute(
            select(EventRow.event_id, EventRow.card_id).where(EventRow.sequence == 2)
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
                    "next_attempt_at": now - timedelta(hours=1),
                }
                for event_id, card in seconds
            ],
        )


def timed_claims(platform: Platform, now: datetime, rounds: int, worker: str) -> list[float]:
    """Milliseconds per claim of LIMIT (each claim leases what it took, as a worker's would)."""
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        claimed = claim(
            platform.engine, worker_id=worker, now=now, lease=timedelta(minutes=5), limit=LIMIT
        )
        took.append(round((time.perf_counter() - started) * 1000, 1))
        assert len(claimed) == LIMIT, f"only {len(claimed)} claimed: raise --due"
    return took


def timed_parking(platform: Platform, now: datetime) -> tuple[list[float], int]:
    """Walks as a worker makes them, one after the other while a walk parks half a window or
    more; the milliseconds of each walk, and the deliveries parked in all."""
    took, parked = [], 0
    while True:
        started = time.perf_counter()
        moved = park_waiting(platform.engine, now=now)
        took.append(round((time.perf_counter() - started) * 1000, 1))
        parked += moved
        if moved < PARK_WINDOW // 2:
            return took, parked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--waiting", type=int, default=50_000, help="deliveries no claim may take")
    parser.add_argument("--due", type=int, default=20_000, help="deliveries a claim may take")
    parser.add_argument("--rounds", type=int, default=5, help="claims timed each time")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'claims.db'}"
        platform = prepare_database(url, "http://127.0.0.1:9", per_call=1)
        now = datetime.now(UTC)
        write_waiting(platform, args.waiting, now)
        seed(platform, args.due)
        now = datetime.now(UTC) + timedelta(seconds=1)
        before = timed_claims(platform, now, args.rounds, "before")
        parking, parked = timed_parking(platform, now)
        after = timed_claims(platform, now, args.rounds, "after")
        idle_parking, _ = timed_parking(platform, now)
        platform.close()

    figures: dict[str, Any] = {
        "measured": provenance(),
        "database": url.split(":", 1)[0],
        "waiting": args.waiting,
        "due": args.due,
        "claim_limit": LIMIT,
        "claim_ms_before_parking": before,
        "claim_ms_after_parking": after,
        "median_claim_ms_before": statistics.median(before),
        "median_claim_ms_after": statistics.median(after),
        "parking_walks_ms": parking,
        "parking_ms": round(sum(parking), 1),
        "parked": parked,
        "parking_ms_with_nothing_to_park": idle_parking[0],
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
