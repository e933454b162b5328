"""Throughput and memory of `issuance orders import` next to a raw `executemany` of its rows.

    .venv/bin/python bench/import_file.py N [--database-url URL] [--batch-size B] [--workers W]
        [--json bench/results/import-sqlite.json]

1. The file: N valid DEMOBANK01 orders (a new card each, its data in an ECDH-ES JWE), cached in
   bench/.cache/import/ (gitignored) by N with the platform keys it is encrypted to; made once,
   and not timed as import (see `order_file` for the JWEs it reuses).
2. The import: the real binary on a fresh database (a temporary SQLite file, or the PostgreSQL
   database named by --database-url, dropped and created first): wall time, cards/s, peak RSS of
   the importer (its VmHWM, and its process tree's PSS, sampled every 0.5 s).
   Then the same file again, as a run resumed after a crash sees its committed lines.
3. The ceiling: exactly the rows the import wrote (cards, orders, events, deliveries, audit), read
   back batch by batch and inserted into another fresh database with one Core `executemany` per
   table and one commit per batch: only the inserts and commits are timed.
4. Where a line's time goes: parse, schema validation, `to_command` (JWE decryption, sealing, the
   fingerprint), decryption alone, in µs per line over a sample, in this process.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from delivery import provenance  # bench/ is on the script's path
from joserfc import jwe
from joserfc.jwk import ECKey
from sqlalchemy import Connection, Table, create_engine, insert, select
from sqlalchemy.engine import make_url

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.contract.orders import CardItem
from issuance.contract.sensitive import luhn_ok
from issuance.db.engine import make_engine
from issuance.db.migrate import upgrade
from issuance.db.models import AuditRow, CardRow, DeliveryRow, EventRow, OrderRow
from issuance.platform import Platform
from issuance.security.field_encryption import decrypt_fields
from issuance.services.configuration import load_config
from issuance.services.intake import to_command
from issuance.services.order_files import FileFormat, records
from issuance.settings import Settings

HERE = Path(__file__).parent
CACHE = HERE / ".cache" / "import"
KEYS = CACHE / "keys"
ISSUANCE = Path(sys.executable).parent / "issuance"
ISSUER = "DEMOBANK01"
ADDRESS = {"line1": "10 Rue de Rivoli", "zipCode": "75001", "city": "Paris", "countryCode": "FR"}
DISTINCT_SECRETS = 2000

# --- the file ---


def _pan(number: int) -> str:
    body = f"45399100{number:07d}"
    return next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))


def _secrets(span: tuple[int, int, dict[str, Any]]) -> list[str]:
    """JWEs of distinct cards (ECDH-ES: a fresh ephemeral key each, as issuers send them)."""
    start, end, jwk = span
    key = ECKey.import_key(jwk)
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid}
    return [
        jwe.encrypt_compact(
            header,
            json.dumps({"pan": _pan(n), "exp": "2911", "name": "ADA LOVELACE", "cvv2": "123"}),
            key,
        )
        for n in range(start, end)
    ]


def _line(number: int, secret: str) -> str:
    body: dict[str, Any] = {
        "cardId": f"bench-{number:08d}",
        "issuerRequestId": f"bench-{number:08d}",
        "cardProductId": "DEMO-DEBIT",
        "services": {"issuance": "RENEWAL", "delivery": "laposte-lettre"},
        "encryptedData": secret,
        "paymentApplication": {
            "config": "VISA-DEBIT",
            "odaKeyIndex": "1",
            "derivationKeyIndex": "2",
        },
        "shipment": {"deliveryAddress": ADDRESS, "individualAddress": ADDRESS},
    }
    return json.dumps(body) + "\n"


def order_file(lines: int, jwk: dict[str, Any]) -> tuple[Path, float]:
    """The cached N-line file for this key (made if missing), and the seconds it took.

    Encrypting is the issuer's cost, not the importer's, and a million ECDH-ES encryptions take
    this shared machine hours: the lines cycle through `DISTINCT_SECRETS` JWEs made on both
    cores. Every line is still decrypted, checked, fingerprinted and sealed on its own.
    """
    path = CACHE / f"orders-{lines}-{jwk['kid']}.jsonl"
    if path.exists():
        return path, 0.0
    started = time.monotonic()
    distinct = min(lines, DISTINCT_SECRETS)
    spans = [(s, min(s + 250, distinct), jwk) for s in range(0, distinct, 250)]
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        secrets = [secret for part in pool.map(_secrets, spans) for secret in part]
    partial = path.with_suffix(f".{os.getpid()}.partial")  # two runs may make it at once
    with partial.open("w") as out:
        for number in range(lines):
            out.write(_line(number, secrets[number % distinct]))
    partial.rename(path)
    return path, time.monotonic() - started


# --- databases ---


def fresh_database(url: str) -> None:
    """Empty and migrated, the sandbox configuration loaded (PostgreSQL: dropped, created)."""
    target = make_url(url)
    if target.get_backend_name() == "postgresql":
        server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with server.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
        server.dispose()
    upgrade(url)
    platform = Platform.build(Settings(database_url=url, keys_dir=KEYS, sandbox=True))
    load_config(read_config(SANDBOX_CONFIG), uow=platform.uow())
    platform.close()


def drop_database(url: str) -> None:
    target = make_url(url)
    if target.get_backend_name() != "postgresql":
        return
    server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    server.dispose()


def sibling(url: str, suffix: str, work: Path) -> str:
    target = make_url(url)
    if target.get_backend_name() == "postgresql":
        return target.set(database=f"{target.database}_{suffix}").render_as_string(
            hide_password=False
        )
    return f"sqlite:///{work / (suffix + '.db')}"


# --- the import ---


def _high_water_kib(pid: int) -> int:
    """The process's peak RSS so far (VmHWM), 0 once it is gone. Not `ru_maxrss`: Linux carries
    that over `exec` from the forked copy of this bench, whose memory it then counts."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return int(status.split("VmHWM:")[1].split()[0]) if "VmHWM:" in status else 0


def _tree_kib(pid: int) -> tuple[int, int]:
    """(RSS of the process, PSS of it and all its descendants): shared pages counted once."""
    own, total, pending = 0, 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                elif line.startswith("Rss:") and current == pid:
                    own = int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return own, total


def run_import(url: str, path: Path, batch_size: int, workers: int) -> dict[str, Any]:
    env = {**os.environ, "ISSUANCE_DATABASE_URL": url, "ISSUANCE_KEYS_DIR": str(KEYS)}
    report = path.parent / f"report-{os.getpid()}.jsonl"
    command = [str(ISSUANCE), "orders", "import", str(path), "--issuer", ISSUER, "--json"]
    command += ["--batch-size", str(batch_size), "--workers", str(workers), "--report", str(report)]
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - our own binary, our own arguments
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    samples: list[tuple[float, float, float]] = []  # seconds, RSS MB, tree PSS MB
    high_water_kib = 0
    while process.poll() is None:
        own, tree = _tree_kib(process.pid)
        samples.append((round(time.monotonic() - started, 1), own / 1024, tree / 1024))
        high_water_kib = max(high_water_kib, _high_water_kib(process.pid))
        time.sleep(0.5)
    out, err = process.communicate()
    wall = time.monotonic() - started
    report.unlink(missing_ok=True)
    if process.returncode != 0:
        raise RuntimeError(f"the import failed: {err[-2000:]}")
    summary: dict[str, Any] = json.loads(out)
    step = max(1, len(samples) // 40)
    return {
        "wallSeconds": round(wall, 1),  # start-up (imports, keys, config) included
        "seconds": summary["seconds"],
        "accepted": summary["accepted"],
        "replayed": summary["replayed"],
        "refused": summary["refused"],
        "cardsPerSecond": summary["cardsPerSecond"],
        "cpuSeconds": summary["cpuSeconds"],
        "cpuMicrosecondsPerCard": round(summary["cpuSeconds"] / max(1, summary["lines"]) * 1e6),
        "peakHighWaterMB": round(high_water_kib / 1024, 1),
        "peakSampledRssMB": round(max((s[1] for s in samples), default=0.0), 1),
        "peakTreePssMB": round(max((s[2] for s in samples), default=0.0), 1),
        "memoryOverTime": [(t, round(r), round(p)) for t, r, p in samples[::step]],
    }


# --- the ceiling ---

TABLES = [m.__table__ for m in (CardRow, OrderRow, EventRow, DeliveryRow, AuditRow)]


def _batches(source: Connection, size: int) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """The import's rows, one batch of events (and what goes with them) at a time."""
    cards, orders, events, deliveries, audit = (t for t in TABLES if isinstance(t, Table))
    last = 0
    while True:
        rows = [
            r._asdict()
            for r in source.execute(
                select(events)
                .where(events.c.event_id > last)
                .order_by(events.c.event_id)
                .limit(size)
            )
        ]
        if not rows:
            return
        last = rows[-1]["event_id"]
        operations = [row["operation_id"] for row in rows]
        card_ids = [row["card_id"] for row in rows]

        def fetch(query: Any) -> list[dict[str, Any]]:
            return [r._asdict() for r in source.execute(query)]

        yield {
            "cards": fetch(select(cards).where(cards.c.card_id.in_(card_ids))),
            "orders": fetch(select(orders).where(orders.c.operation_id.in_(operations))),
            "events": rows,
            "deliveries": fetch(
                select(deliveries)
                .where(deliveries.c.event_id.in_([row["event_id"] for row in rows]))
                .order_by(deliveries.c.delivery_id)
            ),
            "audit": fetch(
                select(audit).where(audit.c.operation_id.in_(operations)).order_by(audit.c.audit_id)
            ),
        }


def ceiling(source_url: str, target_url: str, batch_size: int) -> dict[str, Any]:
    """Cards/s of inserting the same rows with bare executemany, one transaction per batch."""
    fresh_database(target_url)
    source, target = make_engine(source_url), make_engine(target_url)
    tables = {t.name: t for t in TABLES if isinstance(t, Table)}
    names = {"cards": "cards", "orders": "orders", "events": "events"}
    names |= {"deliveries": "deliveries", "audit": "audit_log"}
    timed, cpu, cards, rows = 0.0, 0.0, 0, 0
    try:
        with source.connect() as reading:
            for batch in _batches(reading, batch_size):
                started, started_cpu = time.perf_counter(), time.process_time()
                with target.begin() as writing:
                    for key, table_name in names.items():
                        if batch[key]:
                            writing.execute(insert(tables[table_name]), batch[key])
                timed += time.perf_counter() - started
                cpu += time.process_time() - started_cpu
                cards += len(batch["events"])
                rows += sum(len(v) for v in batch.values())
    finally:
        source.dispose()
        target.dispose()
    return {
        "cards": cards,
        "rows": rows,
        "seconds": round(timed, 2),
        "cardsPerSecond": round(cards / timed, 1) if timed else 0.0,
        # this process only: on SQLite the database's work too, on PostgreSQL not the server's
        "cpuMicrosecondsPerCard": round(cpu / max(1, cards) * 1e6),
    }


# --- where a line's time goes ---


def stages(path: Path, sample: int) -> dict[str, float]:
    """CPU µs per line of each stage, over the file's first `sample` lines, in this process."""
    platform = Platform.build(Settings(database_url="sqlite://", keys_dir=KEYS, sandbox=True))
    keys = platform.intake_keys
    with path.open("rb") as stream:
        head = [stream.readline() for _ in range(sample)]
    started = time.process_time()
    parsed = list(records(io.BytesIO(b"".join(head)), FileFormat.JSONL))
    parse = time.process_time() - started
    started = time.process_time()
    cards = [CardItem.model_validate(r.body) for r in parsed]
    validate = time.process_time() - started
    started = time.process_time()
    for card in cards:
        decrypt_fields(card.encrypted_data, keys.jwe)
    decrypt = time.process_time() - started
    started = time.process_time()
    for card in cards:
        to_command(card, issuer_id=ISSUER, card_id=card.card_id, keys=keys, input_file_name="x")
    command = time.process_time() - started
    platform.close()

    def per_line(seconds: float) -> float:
        return round(seconds / len(parsed) * 1e6, 1)

    return {
        "parse": per_line(parse),
        "validate": per_line(validate),
        "decryptAlone": per_line(decrypt),
        "toCommand": per_line(command),  # decryption, sensitive-data checks, fingerprint, seal
    }


# --- the run ---


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lines", type=int)
    parser.add_argument("--database-url")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--stage-sample", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        figures = bench(args, work)
    finally:
        shutil.rmtree(work)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    url = args.database_url or f"sqlite:///{work / 'import.db'}"
    keys_platform = Platform.build(Settings(database_url="sqlite://", keys_dir=KEYS, sandbox=True))
    jwk = keys_platform.keys.public_jwks()["keys"][0]
    keys_platform.close()
    path, generated = order_file(args.lines, jwk)

    fresh_database(url)
    imported = run_import(url, path, args.batch_size, args.workers)
    target = sibling(url, "ceiling", work)
    raw = ceiling(url, target, args.batch_size)  # before the re-run adds its replay audit rows
    drop_database(target)
    again = run_import(url, path, args.batch_size, args.workers)  # every line already placed
    drop_database(url)
    per_line = stages(path, min(args.stage_sample, args.lines))
    ratio = imported["cardsPerSecond"] / raw["cardsPerSecond"] if raw["cardsPerSecond"] else 0
    return {
        "lines": args.lines,
        "database": make_url(url).get_backend_name(),
        "batchSize": args.batch_size,
        "workers": args.workers,
        "fileMB": round(path.stat().st_size / 1e6, 1),
        "generationSeconds": round(generated, 1),
        "import": imported,
        "ceiling": raw,
        "rerun": {  # the same file again: each line answered REPLAYED without decrypting it
            "cardsPerSecond": again["cardsPerSecond"],
            "cpuMicrosecondsPerCard": again["cpuMicrosecondsPerCard"],
            "replayed": again["replayed"],
            "peakSampledRssMB": again["peakSampledRssMB"],
        },
        "ratioToCeiling": round(ratio, 3),
        "cpuMicrosecondsPerLine": per_line,
        "wallMicrosecondsPerCard": {
            "import": round(1e6 / imported["cardsPerSecond"], 1)
            if imported["cardsPerSecond"]
            else None,
            "ceiling": round(1e6 / raw["cardsPerSecond"], 1) if raw["cardsPerSecond"] else None,
        },
        "loadAverage": os.getloadavg(),
        "cpuCount": os.cpu_count(),
        "measured": provenance(),
    }


if __name__ == "__main__":
    main()
