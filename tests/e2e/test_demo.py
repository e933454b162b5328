"""`issuance demo`, the real binary: the sandbox platform and the example issuer, side by side.

The demo starts both as processes of its own on the ports it is given (free ones here), in a
temporary directory (pointed into the test's own with TMPDIR, to show it is removed), orders
cards through the issuer kit with sandbox chaos on, and reports both views of each card.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ISSUANCE = Path(sys.executable).parent / "issuance"
# Where each scenario the demo gives its first four cards leaves them: step, shipment status.
FINAL = {
    "SUCCESS": ("CARD_SHIPPED", "DELIVERED"),
    "DATA_EXCEPTION": ("DATA_EXCEPTION", None),
    "ON_HOLD": ("CARD_SHIPPED", "DELIVERED"),
    "RETURNED": ("CARD_SHIPPED", "RETURNED"),
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _demo(tmp_path: Path, *options: str) -> tuple[int, str, str]:
    """Run `issuance demo --json` to its end (its whole process group killed on a timeout)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    ports = ["--port", str(_free_port()), "--issuer-port", str(_free_port())]
    process = subprocess.Popen(
        [str(ISSUANCE), "demo", "--json", *ports, *options],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"the demo did not finish within 120 s:\n{stderr}") from None
    assert list(scratch.iterdir()) == [], "the demo left its temporary directory behind"
    assert not (tmp_path / "var").exists(), "the demo touched ./var"
    return process.returncode, stdout, stderr


def test_the_demo_ends_with_the_issuers_view_equal_to_the_platforms(tmp_path: Path) -> None:
    code, stdout, stderr = _demo(tmp_path, "--cards", "4")

    assert code == 0, stderr
    report: dict[str, Any] = json.loads(stdout)
    assert (report["equal"], report["settled"]) == (True, True)
    assert report["chaos"] == {"duplicate": 0.3, "delaySeconds": 0.5, "reorder": True}
    cards = report["cards"]
    assert [card["scenario"] for card in cards] == list(FINAL)
    for card in cards:
        platform = card["platform"]
        assert card["equal"] is True
        assert card["issuer"] == platform
        assert (platform["step"], platform["shipment"]) == FINAL[card["scenario"]], card
        # The issuer's handler ran for its changes, never more often than there were events.
        assert 1 <= card["changesHandled"] <= platform["sequence"], card


def test_the_demo_fails_when_the_cards_do_not_get_to_the_end_in_time(tmp_path: Path) -> None:
    # One simulator step every 5 s, and 1 s to wait: the card cannot reach its final state.
    code, stdout, stderr = _demo(tmp_path, "--cards", "1", "--pace", "5", "--timeout", "1")

    assert code == 1, stderr
    report = json.loads(stdout)
    assert report["settled"] is False
    [card] = report["cards"]
    assert (card["scenario"], card["platform"]["status"]) == ("SUCCESS", "PENDING")
