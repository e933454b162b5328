"""Key rotation with orders in flight, run by the `issuance keys` binary beside a live server.

JWE: issuers encrypting for the previous key keep being served until a second rotation retires
it. Master key: every data key is re-wrapped under the new one; an order sealed meanwhile by a
process still on the old key stays readable, and the old key can be retired only once nothing
depends on it. The production batch export reads every order at each step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from issuance.contract.orders import CardOrderRequest
from issuance.db.models import AuditRow, OrderRow
from issuance.domain.audit import Actor, ActorKind
from issuance.security.keys import load_key_ring
from issuance.services.export import export_batch_personalization
from issuance.services.intake import IntakeKeys, to_command
from issuance.services.ordering import place_order
from tests.conftest import Server
from tests.factories import (
    DEMO,
    ActingIssuerClient,
    OperatorClient,
    card_data,
    encrypt,
    expect_ok,
    new_card_id,
    order_body,
)

ISSUANCE = Path(sys.executable).parent / "issuance"


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """Keys of this test alone: rotating them must not touch other tests' servers."""
    return tmp_path / "keys"


def keys_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    settings = server.platform.settings
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ISSUANCE_")},
        "ISSUANCE_DATABASE_URL": settings.database_url,
        "ISSUANCE_KEYS_DIR": str(settings.keys_dir),
    }
    return subprocess.run(
        [str(ISSUANCE), "keys", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def _wait_for(condition: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"the server did not pick up {what}"
        time.sleep(0.05)


def _kids(http: httpx.Client) -> list[str]:
    return [key["kid"] for key in http.get("/.well-known/jwks.json").json()["keys"]]


def _place(issuer: ActingIssuerClient, encrypted: str, card_id: str | None = None) -> str:
    card_id = card_id or new_card_id()
    answer = issuer.order(card_id, order_body(encrypted))
    assert answer.status_code == 202, answer.text
    return card_id


def _export(server: Server, batch: str) -> dict[str, Any]:
    platform = server.platform
    records = export_batch_personalization(
        batch,
        uow=platform.uow(),
        masters=platform.keys.master_keys,
        clock=platform.clock,
        actor=Actor(ActorKind.OPERATOR, "exporter"),
    )
    return {record.card_id: record.card_data for record in records}


def test_jwe_rotation_keeps_serving_issuers_of_the_previous_key(
    server: Server, http: httpx.Client
) -> None:
    issuer = ActingIssuerClient(http)
    old_jwks = issuer.jwks
    [old_kid] = _kids(http)
    in_flight = _place(issuer, encrypt(card_data(), old_jwks))
    prepared_for_old = encrypt(card_data(), old_jwks)  # encrypted, not sent yet

    rotated = keys_cli(server, "rotate-jwe")
    assert rotated.returncode == 0, rotated.stderr
    _wait_for(lambda: len(_kids(http)) == 2, "the new JWE key")
    new_kid, previous = _kids(http)
    assert previous == old_kid != new_kid

    late = _place(issuer, prepared_for_old)  # an issuer still on the previous key
    fresh = _place(
        issuer,
        encrypt(card_data(), {"keys": [http.get("/.well-known/jwks.json").json()["keys"][0]]}),
    )
    assert issuer.status(in_flight).status_code == 200

    assert keys_cli(server, "rotate-jwe").returncode == 0
    _wait_for(lambda: old_kid not in _kids(http), "the retirement of the oldest key")
    refused = issuer.order(new_card_id(), order_body(encrypt(card_data(), old_jwks)))
    assert (refused.status_code, refused.json()["errorCode"]) == (400, "UNKNOWN_JWE_KEY")
    for card_id in (in_flight, late, fresh):
        assert issuer.operation(card_id)["details"]["status"] == "CARD_PROD_REQUESTED"
    listed = json.loads(keys_cli(server, "list", "--json").stdout)
    assert [(k["kid"], k["role"]) for k in listed if k["kind"] == "JWE"] == [
        (_kids(http)[0], "current"),
        (new_kid, "previous"),
    ]


def _order_with_old_keys(server: Server, old: IntakeKeys, jwks: dict[str, Any]) -> str:
    """A server process that has not seen the rotation yet seals a new order with the old key."""
    card_id = new_card_id()
    body = CardOrderRequest.model_validate(order_body(encrypt(card_data(), jwks)))
    command = to_command(body, issuer_id=DEMO, card_id=card_id, keys=old)
    platform = server.platform
    place_order(command, uow=platform.uow(), clock=platform.clock, new_id=platform.new_id)
    return card_id


def _wrapping_keys(server: Server) -> dict[str, str | None]:
    with server.platform.engine.connect() as connection:
        rows = connection.execute(select(OrderRow.card_id, OrderRow.sensitive_key_id)).all()
    return dict(rows)


def test_master_rotation_rewraps_orders_in_flight_without_downtime(
    server: Server, http: httpx.Client
) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    old_master = server.platform.keys.master_keys.wrapping_key_id
    old_intake = server.platform.intake_keys
    cards = {_place(issuer, encrypt(card_data(), issuer.jwks)): None for _ in range(3)}
    first = next(iter(cards))
    expect_ok(operator.act(first, "prepare"))
    batch = expect_ok(operator.act(first, "queue"))["details"]["productionBatch"]
    before = _export(server, batch)[first]
    assert before is not None

    rotated = keys_cli(server, "rotate-master")  # adds the key, then re-wraps every data key
    assert rotated.returncode == 0, rotated.stderr
    new_master = load_key_ring(server.platform.settings.keys_dir, generate=False).master_keys
    assert new_master.wrapping_key_id != old_master
    assert set(_wrapping_keys(server).values()) == {new_master.wrapping_key_id}

    straggler = _order_with_old_keys(server, old_intake, issuer.jwks)  # during the rotation
    assert _wrapping_keys(server)[straggler] == old_master
    _wait_for(
        lambda: server.platform.keys.master_keys.wrapping_key_id == new_master.wrapping_key_id,
        "the new master key",
    )
    after = _place(issuer, encrypt(card_data(), issuer.jwks))  # this server, after reloading
    assert _wrapping_keys(server)[after] == new_master.wrapping_key_id

    refused = keys_cli(server, "retire-master", old_master)
    assert refused.returncode == 1
    assert "still wrapped" in " ".join(refused.stderr.split())
    assert keys_cli(server, "rewrap").returncode == 0
    retired = keys_cli(server, "retire-master", old_master)
    assert retired.returncode == 0, retired.stderr

    _wait_for(lambda: old_master not in server.platform.keys.master_keys.keys, "the retirement")
    assert _export(server, batch)[first] == before  # still readable, under the new key only
    for card_id in (straggler, after, *list(cards)[1:]):
        expect_ok(operator.act(card_id, "prepare"))
        name = expect_ok(operator.act(card_id, "queue"))["details"]["productionBatch"]
        assert _export(server, name)[card_id] is not None
    with server.platform.engine.connect() as connection:
        actions = set(
            connection.scalars(select(AuditRow.action).where(AuditRow.actor_kind == "OPERATOR"))
        )
    assert {"keys.rotate_master", "keys.rewrap", "keys.retire_master"} <= actions
