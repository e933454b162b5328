"""Throughput and memory of `issuance batches report` on a generated report of N cards.

    .venv/bin/python bench/production_report.py N [--database-url URL] [--batch-size B] [--json PATH]

Builds a fresh database (a temporary SQLite file, or the PostgreSQL database named by
--database-url, dropped and created first), orders N DEMOBANK01 cards through `issuance orders
import`, prepares and batches them, then writes the bureau's report: STARTED, DONE and SHIPPED
for every card (3N lines, in that order, so each line is one state change and one journal
event). The lines name their card by cardId and issuerId, as a bureau that echoes the issuer's
card id writes them. It runs the real binary on the report twice and reports, for each run,
wall time, lines/s, peak RSS (VmHWM) and the CPU its process spent per line (PostgreSQL's own is not
counted): the first applies every line, the second finds every line ALREADY_APPLIED and
changes nothing. Setting up the cards is not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from delivery import fresh_database, provenance  # bench/ is the script's path
from import_file import _line, _secrets

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.migrate import upgrade
from issuance.domain.statuses import ProductionStatus
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.services.workflow import Action, apply_action, batch_production

ISSUANCE = Path(sys.executable).parent / "issuance"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cards", type=int)
    parser.add_argument("--database-url")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        _bench(args, work)
    finally:
        shutil.rmtree(work)


def _prepare_all(platform: Platform) -> None:
    """Every requested order to DATA_PREPARED, a thousand per transaction."""
    while True:
        with platform.uow() as uow:
            orders = uow.orders.search(
                statuses=(ProductionStatus.CARD_PROD_REQUESTED.value,), limit=1000
            )
            for order in orders:
                apply_action(Action.PREPARE, order, uow=uow, now=platform.clock())
            uow.commit()
        if not orders:
            return


PEAK = """
import sys
from pathlib import Path
from issuance.cli.main import app
try:
    app(sys.argv[1:])
finally:
    status = Path("/proc/self/status").read_text()
    print(status.split("VmHWM:")[1].split()[0], file=sys.stderr)
"""
"""The CLI in a process that reports its own peak RSS (KiB, VmHWM) last on stderr. Not
`ru_maxrss`: Linux carries it over `exec` from the forked copy of this process, so it counted
this bench's own memory (all the cards it set up), not the CLI's."""


def _run(command: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any], float, float]:
    """Wall seconds, the CLI's JSON summary, its peak RSS (MB) and its CPU seconds."""
    started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", PEAK, *command], env=env, capture_output=True, text=True
    )
    wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, json.loads(done.stdout), peak_kib / 1024, cpu


def _bench(args: argparse.Namespace, work: Path) -> None:
    url = args.database_url or f"sqlite:///{work / 'issuance.db'}"
    fresh_database(url)
    upgrade(url)
    env = {**os.environ, "ISSUANCE_DATABASE_URL": url, "ISSUANCE_KEYS_DIR": str(work / "keys")}
    env["ISSUANCE_SANDBOX"] = "true"
    from issuance.settings import Settings

    platform = Platform.build(Settings(database_url=url, keys_dir=work / "keys", sandbox=True))
    load_config(read_config(SANDBOX_CONFIG), uow=platform.uow())
    secrets = _secrets((0, args.cards, platform.keys.public_jwks()["keys"][0]))
    orders = work / "orders.jsonl"
    orders.write_text("".join(_line(n, secret) for n, secret in enumerate(secrets)))
    placed = [str(ISSUANCE), "orders", "import", str(orders), "--issuer", "DEMOBANK01", "--json"]
    subprocess.run(placed, env=env, capture_output=True, check=True)  # noqa: S603
    _prepare_all(platform)
    batch_production(uow=platform.uow(), clock=platform.clock, limit=args.cards)
    at = platform.clock() - timedelta(hours=1)
    report = work / "report.jsonl"
    with report.open("w") as out:
        for event in ("STARTED", "DONE", "SHIPPED"):
            for n in range(args.cards):
                line = {"cardId": f"bench-{n:08d}", "issuerId": "DEMOBANK01", "event": event}
                out.write(json.dumps({**line, "at": at.isoformat(), "carrier": "laposte"}) + "\n")
    platform.close()

    load_at_start = os.getloadavg()  # the machine is shared: say how busy it was
    command = ["batches", "report", str(report), "--json"]
    command += ["--batch-size", str(args.batch_size)]
    first = _run(command, env)
    second = _run(command, env)
    figures = {
        "cards": args.cards,
        "lines": 3 * args.cards,
        "database": url.split(":", 1)[0].split("+")[0],
        "batchSize": args.batch_size,
        "apply": _figures(first),
        "reimport": _figures(second),
        "code": _revision(),
        "loadAverage": list(load_at_start),
        "measured": provenance(),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _revision() -> str:
    """The commit of the `issuance` code measured (PYTHONPATH may point at another checkout)."""
    import issuance

    where = str(Path(issuance.__file__).parent)
    done = subprocess.run(  # noqa: S603 (git, on our own checkout)
        ["git", "-C", where, "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def _figures(run: tuple[float, dict[str, Any], float, float]) -> dict[str, Any]:
    wall, summary, peak_mb, cpu = run
    return {
        "wallSeconds": round(wall, 1),
        "applied": summary["applied"],
        "alreadyApplied": summary["alreadyApplied"],
        "refused": summary["refused"],
        "linesPerSecond": summary["linesPerSecond"],
        "peakHighWaterMB": round(peak_mb, 1),
        "cpuMicrosecondsPerLine": round(cpu * 1e6 / summary["lines"]),
    }


if __name__ == "__main__":
    main()
