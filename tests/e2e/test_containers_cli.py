"""`issuance containers …`: the real binary on the database the API serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.factories import (
    ADDRESS,
    DEMO,
    ActingIssuerClient,
    OperatorClient,
    expect_ok,
    new_card_id,
    order_body,
)

ISSUANCE = Path(sys.executable).parent / "issuance"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(server: Server, tmp_path: Path) -> Run:
    """`issuance ARGS…` on the server's database and keys."""
    settings = server.platform.settings
    environment = {
        **os.environ,
        "ISSUANCE_DATABASE_URL": settings.database_url,
        "ISSUANCE_KEYS_DIR": str(settings.keys_dir),
        "ISSUANCE_SANDBOX": "true",
        "COLUMNS": "200",
    }
    return lambda *args: subprocess.run(
        [str(ISSUANCE), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_an_operator_ships_receives_and_hands_over_from_the_command_line(
    http: httpx.Client, run: Run
) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    group = f"box-cli-{uuid.uuid4().hex[:8]}"
    shipment = {
        "type": "BULK",
        "groupId": group,
        "orderId": "dispatch-cli",
        "deliveryAddress": ADDRESS,
    }
    cards = sorted(new_card_id() for _ in range(2))
    for card_id in cards:
        body = order_body(
            issuer.encrypt(),
            services={"issuance": "CREATION", "delivery": "dhl-branch"},
            shipment=shipment,
        )
        assert issuer.order(card_id, body).status_code == 202
        for action in ("prepare", "queue", "start", "complete"):
            expect_ok(operator.act(card_id, action))

    listed = run("containers", "list", DEMO, "--order-id", "dispatch-cli", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [
        (c["groupId"], c["status"], c["cardCount"]) for c in json.loads(listed.stdout)["containers"]
    ] == [(group, "OPEN", 2)]
    shipped = run("containers", "ship", DEMO, group, "--tracking-number", "JD0009", "--json")
    assert shipped.returncode == 0, shipped.stderr
    answer = json.loads(shipped.stdout)
    assert (answer["status"], answer["carrier"], sorted(answer["movedCardIds"])) == (
        "IN_TRANSIT",
        "dhl",
        cards,
    )
    assert issuer.operation(cards[0])["details"]["shipment"]["trackingNumber"] == "JD0009"

    assert run("containers", "receive", DEMO, group).returncode == 0
    handed = run("containers", "hand-over", DEMO, group, cards[0], "--json")
    assert handed.returncode == 0, handed.stderr
    assert "handedToCardholderAt" in json.loads(handed.stdout)["details"]["container"]
    shown = run("containers", "show", DEMO, group)
    assert shown.returncode == 0, shown.stderr
    assert "RECEIVED_AT_BRANCH" in shown.stdout
    assert cards[1] in shown.stdout

    again = run("containers", "hand-over", DEMO, group, cards[0])
    assert again.returncode == 1
    assert "ILLEGAL_CONTAINER_TRANSITION" in again.stderr
    unknown = run("containers", "show", DEMO, "no-such-box")
    assert (unknown.returncode, "CONTAINER_NOT_FOUND" in unknown.stderr) == (1, True)
