"""`issuance orders …` and `issuance stock …`: the real binary on the database the API serves.

The server and the CLI processes share one database; what one does, the other sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.factories import (
    DEMO,
    ActingIssuerClient,
    OperatorClient,
    journal,
    new_card_id,
    order_body,
)

ISSUANCE = Path(sys.executable).parent / "issuance"


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(server: Server, tmp_path: Path) -> Run:
    """`issuance ARGS…` on the server's database and keys."""
    return lambda *args: _run(*args, server=server, cwd=tmp_path)


def _run(*args: str, server: Server, cwd: Path) -> subprocess.CompletedProcess[str]:
    settings = server.platform.settings
    environment = {
        **os.environ,
        "ISSUANCE_DATABASE_URL": settings.database_url,
        "ISSUANCE_KEYS_DIR": str(settings.keys_dir),
        "ISSUANCE_SANDBOX": "true",  # the sandbox clock, as the server's
        "COLUMNS": "200",
    }
    return subprocess.run(
        [str(ISSUANCE), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return json.loads(result.stdout)


def test_the_bureau_lists_advances_and_restocks_from_the_command_line(
    server: Server, http: httpx.Client, run: Run
) -> None:
    """Five commands, as few as the story needs: each process takes ~1.5 s to start."""
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    first, second, cancelled = new_card_id(), new_card_id(), new_card_id()
    for card_id in (first, second, cancelled):
        assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
    assert issuer.cancel(cancelled).status_code == 200

    advanced = _json(run("orders", "advance", DEMO, first, "prepare", "--json"))
    assert advanced["cardId"] == first
    assert advanced["details"]["status"] == "DATA_PREPARED"
    assert issuer.operation(first)["details"]["status"] == "DATA_PREPARED"  # the API sees it
    assert [(e.sequence, e.status) for e in journal(server.platform.engine, first)] == [
        (1, "CARD_PROD_REQUESTED"),
        (2, "DATA_PREPARED"),
    ]

    illegal = run("orders", "advance", DEMO, second, "ship", "--json")
    assert illegal.returncode == 1
    assert "ILLEGAL_STATUS_TRANSITION" in illegal.stderr
    assert illegal.stdout == ""
    assert issuer.operation(second)["details"]["status"] == "CARD_PROD_REQUESTED"
    assert len(journal(server.platform.engine, second)) == 1

    in_progress = ("--status", "DATA_PREPARED", "--status", "CARD_PROD_REQUESTED")
    listed = _json(run("orders", "list", *in_progress, "--issuer", DEMO, "--json"))
    assert [(o["issuerId"], o["cardId"], o["details"]["status"]) for o in listed] == [
        (DEMO, first, "DATA_PREPARED"),  # most recently changed first
        (DEMO, second, "CARD_PROD_REQUESTED"),
    ]

    levels = _json(run("stock", "show", DEMO, "--json"))
    assert levels == operator.stock()
    assert levels["BODY-DEBIT-BLUE"] == 50_000  # the sandbox configuration's level

    restocked = _json(run("stock", "replenish", DEMO, "BODY-DEBIT-BLUE", "7", "--json"))
    assert restocked == {"quantity": 50_007, "resumedCardIds": []}
    assert operator.stock()["BODY-DEBIT-BLUE"] == 50_007
