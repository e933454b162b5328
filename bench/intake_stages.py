"""Where a single-card order's CPU goes, in process and without HTTP: what only the platform pays.

    .venv/bin/python bench/intake_stages.py [--database-url URL] [--orders N] [--json PATH]

Takes under a minute. On a fresh database (a temporary SQLite file, or the PostgreSQL database
named by --database-url, dropped and created first) with the sandbox configuration, N orders
(default 3,200) of bench/intake.py's body, each with its own JWE, go through the stages one at
a time, each timed over all N orders (CPU of this process; PostgreSQL's own is not counted):

- parsing the body as the ceiling does (`json.loads`), and as the platform's route does:
  parsed and validated in one pass from the bytes (api/routes/production.py `card_order`);
- decrypting the JWE alone (both pay it), then `to_command` (decryption, card data checks,
  fingerprint, sealing);
- the ceiling's own insert (bench/bare_intake_app.py: one row committed in a SQLite file in
  WAL mode), which the platform does not make: its group's transaction stands for it;
- the group's transaction (services/grouped_ordering.py: look-ups, then card counter, order,
  journal event, outbox delivery and audit rows) for groups of 1, 8, 16 and 32 orders: under
  load the groups are as large as what arrives while one commits (bench/intake.py reports the
  mean size at saturation).

bench/intake.py's ceiling spends its whole order in about 0.5 ms; 0.6x its rate allows the
platform about 0.35 ms more. These stages are the platform's part of that budget.
"""

from __future__ import annotations

import argparse
import gc
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bare_intake_app import ORDERS_TABLE, insert_order  # bench/ is on the script's path
from delivery import provenance
from intake import CARD_DATA, ISSUER, ORDER, prepare_platform

from issuance.api.routes.production import card_order
from issuance.contract.orders import CardOrderRequest
from issuance.domain.audit import Actor, ActorKind
from issuance.platform import Platform
from issuance.security.field_encryption import decrypt_fields, encrypt_fields
from issuance.services.bulk_placing import BulkBatch
from issuance.services.intake import to_command
from issuance.services.ordering import PlaceOrder
from issuance.settings import Settings

GROUP_SIZES = (1, 8, 16, 32)


def per_order_ms(work: Callable[[], object], orders: int) -> float:
    """CPU ms per order of `work`, which handles `orders` orders, the cyclic collector paused.

    A stage keeps what it makes (3,200 parsed bodies, models, commands) until it ends, and the
    collections that this triggers walk all of it: with the collector on, the body's validation
    read 11 or 43 µs from one run to the next. A server frees each order's objects as it
    answers, and its collector's share is in bench/intake.py's figures.
    """
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        work()
        return round((time.process_time() - started) * 1000 / orders, 3)
    finally:
        gc.enable()


def bodies(platform: Platform, count: int) -> list[bytes]:
    """Orders as bench/intake.py's driver sends them, each card data in a JWE of its own."""
    key = platform.intake_keys.jwe.keys[0].as_dict(private=False)
    template = json.dumps(ORDER)
    made = []
    for number in range(count):
        body = json.loads(template.replace("@N@", str(number)))
        body["encryptedData"] = encrypt_fields(CARD_DATA, key)
        made.append(json.dumps(body, separators=(",", ":")).encode())
    return made


def place_in_groups(platform: Platform, commands: Sequence[PlaceOrder], size: int) -> None:
    """Commit the orders `size` at a time, as GroupedOrdering does under load."""
    actor = Actor(ActorKind.ISSUER, "demobank01", ISSUER)
    for start in range(0, len(commands), size):
        group = commands[start : start + size]
        with platform.bulk() as intake:
            batch = BulkBatch(
                intake, ISSUER, group, at=platform.clock(), actor=actor, new_id=platform.new_id
            )
            refused = [o for o in (batch.take(cmd) for cmd in group) if o.error is not None]
            if refused:
                raise SystemExit(f"an order was refused: {refused[0].error}")
            batch.write()


def bare_insert_ms(path: Path, parsed: Sequence[dict[str, Any]]) -> float:
    """CPU ms per order of the ceiling's insert, as bench/bare_intake_app.py makes it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE " + ORDERS_TABLE.format("orders"))

    def insert_all() -> None:
        for number, body in enumerate(parsed):
            row = (uuid.uuid4().hex, ISSUER, f"bare-{number}", json.dumps(body), "0002")
            insert_order(db, row)

    try:
        return per_order_ms(insert_all, len(parsed))
    finally:
        db.close()


def measure(url: str, directory: Path, orders: int) -> dict[str, Any]:
    prepare_platform(url, directory)
    settings = Settings(database_url=url, sandbox=False, keys_dir=directory / "keys")
    platform = Platform.build(settings)
    try:
        raw = bodies(platform, orders)
        keys = platform.intake_keys
        parsed = [json.loads(b) for b in raw]
        for body in parsed[:50]:  # warm-up, not timed: the first validations build caches
            decrypt_fields(CardOrderRequest.model_validate(body).encrypted_data, keys.jwe)
        figures: dict[str, Any] = {
            "json_loads": per_order_ms(lambda: [json.loads(b) for b in raw], orders),
            "parse_and_validate_body": per_order_ms(
                lambda: [card_order(b, "application/json") for b in raw], orders
            ),
        }
        models = [CardOrderRequest.model_validate(p) for p in parsed]
        figures["decrypt_alone"] = per_order_ms(
            lambda: [decrypt_fields(m.encrypted_data, keys.jwe) for m in models], orders
        )
        commands: list[PlaceOrder] = []

        def build() -> None:
            for number, model in enumerate(models):
                card_id = f"stage-{number}"
                commands.append(to_command(model, issuer_id=ISSUER, card_id=card_id, keys=keys))

        figures["to_command"] = per_order_ms(build, orders)
        figures["bare_insert"] = bare_insert_ms(directory / "bare.db", parsed)
        share, groups = orders // len(GROUP_SIZES), {}
        for number, size in enumerate(GROUP_SIZES):
            part = commands[number * share : (number + 1) * share]
            groups[str(size)] = per_order_ms(
                partial(place_in_groups, platform, part, size), len(part)
            )
        figures["group_transaction"] = groups
        return figures
    finally:
        platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--orders", type=int, default=3200)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        url = args.database_url or f"sqlite:///{directory / 'platform.db'}"
        figures = {
            "database": url.split(":", 1)[0].split("+")[0],
            "orders": args.orders,
            "cpu_ms_per_order": measure(url, directory, args.orders),
            "measured": provenance(),
        }
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
