"""The real binary: `issuance serve --sandbox` as a newcomer runs it, driven by the README example."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import IssuerClient, new_card_id, order_body

ROOT = Path(__file__).resolve().parents[2]
ISSUANCE = Path(sys.executable).parent / "issuance"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"issuance serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("issuance serve did not answer within 60 s")


@pytest.fixture
def sandbox(tmp_path: Path, database_url: str) -> Iterator[str]:
    """`issuance serve --sandbox` in an empty directory (SQLite) or on PostgreSQL with 2 processes."""
    port = _free_port()
    environment = {**os.environ, "ISSUANCE_KEYS_DIR": str(tmp_path / "keys")}
    workers = "1"
    if database_url.startswith("postgresql"):
        environment["ISSUANCE_DATABASE_URL"] = database_url
        workers = "2"
    process = subprocess.Popen(
        [str(ISSUANCE), "serve", "--sandbox", "--port", str(port), "--workers", workers],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url, process)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert b"Traceback" not in output, output.decode()
    if not database_url.startswith("postgresql"):
        assert (tmp_path / "var" / "issuance.db").exists()


def test_the_readme_example_runs_against_a_fresh_sandbox(sandbox: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "order_card.py"), sandbox],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "order: 202" in result.stdout
    assert "replayed: true" in result.stdout
    assert '"status": "CARD_PROD_REQUESTED"' in result.stdout


def test_orders_spread_over_server_processes_share_one_database(sandbox: str) -> None:
    with httpx.Client(base_url=sandbox, timeout=30) as http:
        issuer = IssuerClient(http)
        cards = [new_card_id() for _ in range(10)]
        for card_id in cards:
            assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
        for card_id in cards:
            assert issuer.status(card_id).json()["operations"][0]["sequence"] == 1
