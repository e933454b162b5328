"""`issuance orders import` as the real binary: killed half way, re-run, each card ordered once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from issuance.db.models import OrderRow
from issuance.platform import Platform
from tests.factories import DEMO, card_data, encrypt, new_card_id, order_body

ISSUANCE = Path(sys.executable).parent / "issuance"
LINES = 3000


def _environment(platform: Platform, keys_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ISSUANCE_DATABASE_URL": platform.settings.database_url,
        "ISSUANCE_KEYS_DIR": str(keys_dir),
    }


def _orders_per_card(platform: Platform) -> dict[str, int]:
    query = select(OrderRow.card_id, func.count()).group_by(OrderRow.card_id)
    with platform.engine.connect() as connection:
        return {str(card): int(count) for card, count in connection.execute(query).all()}


def _write_file(path: Path, platform: Platform) -> list[str]:
    jwks = platform.keys.public_jwks()
    cards = [new_card_id() for _ in range(LINES)]
    with path.open("w") as out:
        for card_id in cards:
            body = order_body(encrypt(card_data(), jwks))
            out.write(json.dumps({"cardId": card_id, **body}) + "\n")
    return cards


def _import(path: Path, *args: str) -> list[str]:
    return [str(ISSUANCE), "orders", "import", str(path), "--issuer", DEMO, *args]


def test_an_import_killed_half_way_then_re_run_orders_each_card_exactly_once(
    platform: Platform, keys_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "portfolio.jsonl"
    cards = _write_file(path, platform)
    env = _environment(platform, keys_dir)

    process = subprocess.Popen(
        _import(path, "--batch-size", "100", "--json"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not _orders_per_card(platform) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    if process.stderr:
        process.stderr.close()
    before = _orders_per_card(platform)
    assert 0 < len(before) < LINES, "the import was not stopped half way"
    assert len(before) % 100 == 0  # whole batches only: a transaction is all or nothing

    finished = subprocess.run(
        _import(path, "--json"), env=env, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr
    summary: dict[str, Any] = json.loads(finished.stdout)

    assert set(summary) >= {"lines", "accepted", "replayed", "refused", "seconds"}
    assert summary["cardsPerSecond"] > 0
    assert (summary["lines"], summary["refused"]) == (LINES, 0)
    assert summary["replayed"] == len(before)
    assert summary["accepted"] == LINES - len(before)
    assert _orders_per_card(platform) == dict.fromkeys(cards, 1)
    report = Path(summary["report"]).read_text().splitlines()
    assert [json.loads(line)["line"] for line in report] == list(range(1, LINES + 1))
