"""Write bench/RESULTS.md from the JSON figures in bench/results/, with the machine described.

.venv/bin/python bench/report.py
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        model = names[0] if names else model
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        memory = f", {total_kb / 1024 / 1024:.0f} GiB"
    try:
        postgres = subprocess.run(
            ["psql", "--version"],  # noqa: S607 (psql from PATH, like a user would)
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        postgres = "psql not found"
    return (
        f"{os.cpu_count()} cores ({model}){memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; {postgres} "
        "(server on the same machine). Receiver, workers, database and load share the cores."
    )


def delivery_rows(figures: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| database | workers | operations per POST | notifications/s (POSTs/s) | operations/s "
        "| fastest raw POST loop (POSTs/s) | ratio | worker CPU s | lag p50 / p99 ms "
        "(at ~500/s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for item in figures:
        drained, lag = item["throughput"], item["lag"]
        ceiling = max(item["ceiling_posts_per_second"].items(), key=lambda kv: kv[1])
        rows.append(
            f"| {item['database'].split('+')[0]} | {item['workers']} | {item['per_call']} "
            f"| {drained['posts_per_second']:,.0f} | {drained['per_second']:,.0f} "
            f"| {ceiling[1]:,.0f} ({ceiling[0]}) | {item['ratio_to_ceiling']:.2f} "
            f"| {drained['worker_cpu_seconds']} for {drained['events']:,} "
            f"| {lag['p50_ms']} / {lag['p99_ms']} |"
        )
    return rows


def main() -> None:
    figures = [
        json.loads(path.read_text()) for path in sorted((HERE / "results").glob("delivery-*.json"))
    ]
    ceilings = (
        [
            "| run | " + " | ".join(figures[0]["ceiling_posts_per_second"]) + " |",
            "|---|" + "---|" * len(figures[0]["ceiling_posts_per_second"]),
        ]
        if figures
        else []
    )
    for item in figures:
        name = f"{item['database'].split('+')[0]}, {item['workers']} worker(s), {item['per_call']}/POST"
        values = " | ".join(f"{v:,.0f}" for v in item["ceiling_posts_per_second"].values())
        ceilings.append(f"| {name} | {values} |")
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            "Written by `bench/report.py` from `bench/results/*.json` (`make bench`).",
            "",
            f"Machine: {machine()}",
            "",
            "## Notification delivery (`bench/delivery.py`)",
            "",
            "20,000 events for 20,000 cards drained by `issuance worker` processes into a local",
            "receiver; the rate is counted at the receiver, first arrival to last. The ceiling is the",
            "fastest raw POST loop measured in the same run against the same receiver (32 in flight,",
            "one signed operation per POST); the ratio compares POSTs with POSTs. Lag: events",
            "written at a steady rate while the workers run, arrival minus commit.",
            "",
            *delivery_rows(figures),
            "",
            "Each ceiling loop, in POSTs/s:",
            "",
            *ceilings,
            "",
        ]
    )
    (HERE / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
