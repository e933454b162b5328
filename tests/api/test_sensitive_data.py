"""Sensitive data end to end: the client encrypts, the platform decrypts, stores it under a data
key of its own, decrypts it only for the production batch export, and destroys it once used.

(`tests/integration/test_redaction_everywhere.py` looks for the values everywhere else.)
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from issuance.db.models import AuditRow, OrderRow
from issuance.db.unit_of_work import unit_of_work_factory
from issuance.domain.audit import Actor, ActorKind
from issuance.domain.errors import Conflict
from issuance.domain.retention import Retention
from issuance.security.envelope import is_envelope, open_envelope, wrapping_key_id
from issuance.security.field_encryption import encrypt_fields
from issuance.services.export import export_batch_personalization
from issuance.services.intake import sealing_context
from issuance.services.retention import purge_expired
from issuance.services.workflow import Action, perform
from tests.conftest import Server
from tests.factories import (
    DEMO,
    ActingIssuerClient,
    OperatorClient,
    card_data,
    expect_ok,
    journal,
    luhn_pan,
    new_card_id,
    order_body,
)

AUDITOR = Actor(ActorKind.OPERATOR, "bureau-export")


@pytest.fixture
def issuer(http: httpx.Client) -> ActingIssuerClient:
    return ActingIssuerClient(http)


@pytest.fixture
def operator(http: httpx.Client) -> OperatorClient:
    return OperatorClient(http)


def _card() -> dict[str, Any]:
    pan = luhn_pan("45399100")
    return card_data(
        pan=pan,
        cvv1="654",
        pvv="4321",
        trackData={
            "track1": f"B{pan}^LOVELACE/ADA^2911201000000000000",
            "track2": f"{pan}=29112010000012345",
        },
    )


def _order(issuer: ActingIssuerClient, card: dict[str, Any]) -> str:
    """The issuer encrypts with the same function the issuer kit uses, for the JWKS's first key."""
    card_id = new_card_id()
    encrypted = encrypt_fields(card, issuer.jwks["keys"][0])
    answer = issuer.order(card_id, order_body(encrypted))
    assert answer.status_code == 202, answer.text
    return card_id


def _row(server: Server, card_id: str) -> OrderRow:
    with Session(server.platform.engine) as session:
        return session.scalars(select(OrderRow).where(OrderRow.card_id == card_id)).one()


def _audit_actions(server: Server, card_id: str) -> list[str]:
    with server.platform.engine.connect() as connection:
        return list(
            connection.scalars(
                select(AuditRow.action)
                .where(AuditRow.card_id == card_id)
                .order_by(AuditRow.audit_id)
            )
        )


def _export(server: Server, batch: str) -> dict[str, dict[str, Any]]:
    platform = server.platform
    records = export_batch_personalization(
        batch,
        uow=platform.uow(),
        masters=platform.keys.master_keys,
        clock=platform.clock,
        actor=AUDITOR,
    )
    return {record.card_id: record.card_data for record in records}


def test_encrypted_by_the_client_stored_sealed_exported_once_then_purged(
    server: Server, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    card = _card()
    card_id = _order(issuer, card)

    row = _row(server, card_id)  # stored: an envelope under the current master key
    masters = server.platform.keys.master_keys
    assert row.sensitive_data is not None
    assert is_envelope(row.sensitive_data)
    assert row.sensitive_key_id == wrapping_key_id(row.sensitive_data) == masters.wrapping_key_id
    assert card["pan"].encode() not in row.sensitive_data
    assert card["pan"] not in json.dumps(row.request)
    sealed = json.loads(
        open_envelope(row.sensitive_data, masters=masters, context=sealing_context(DEMO, card_id))
    )
    assert sealed == card  # what the platform decrypted is what the client encrypted

    expect_ok(operator.act(card_id, "prepare"))
    batch = expect_ok(operator.act(card_id, "queue"))["details"]["productionBatch"]
    exported = _export(server, batch)  # the one place the data is ever decrypted
    assert exported[card_id] == card

    expect_ok(operator.act(card_id, "start"))
    done = expect_ok(operator.act(card_id, "complete"))

    purged_at = done["details"]["sensitiveDataPurgedAt"]
    assert issuer.operation(card_id)["details"]["sensitiveDataPurgedAt"] == purged_at
    [done_event] = [
        e for e in journal(server.platform.engine, card_id) if e.status == "CARD_PROD_DONE"
    ]
    assert done_event.payload["details"]["sensitiveDataPurgedAt"] == purged_at
    row = _row(server, card_id)
    assert (row.sensitive_data, row.sensitive_key_id) == (None, None)
    with pytest.raises(Conflict) as refused:  # a file without the card's data: refused
        _export(server, batch)
    assert refused.value.code == "SENSITIVE_DATA_PURGED"
    expect_ok(operator.act(card_id, "ship"))
    assert issuer.operation(card_id)["details"]["sensitiveDataPurgedAt"] == purged_at
    assert _audit_actions(server, card_id) == [
        "order.placed",
        "order.prepare",
        "order.queue",
        "sensitive_data.exported",
        "order.start",
        "order.complete",
        "sensitive_data.purged",
        "order.ship",
    ]


@pytest.mark.parametrize(
    ("actions", "status"),
    [((), "CARD_PROD_CANCELED"), (("fail",), "DATA_EXCEPTION")],
    ids=["cancelled", "failed"],
)
def test_a_card_that_will_never_be_made_loses_its_data_at_once(
    server: Server,
    issuer: ActingIssuerClient,
    operator: OperatorClient,
    actions: tuple[str, ...],
    status: str,
) -> None:
    card_id = _order(issuer, _card())
    for action in actions:
        expect_ok(operator.act(card_id, action, reason="unreadable name", errorCode="BAD_NAME"))
    if not actions:
        expect_ok(issuer.cancel(card_id))

    operation = issuer.operation(card_id)

    assert operation["details"]["status"] == status
    assert "sensitiveDataPurgedAt" in operation["details"]
    assert _row(server, card_id).sensitive_data is None


def test_a_production_exception_keeps_the_data_to_make_the_card_again(
    server: Server, issuer: ActingIssuerClient, operator: OperatorClient
) -> None:
    card_id = _order(issuer, _card())
    for action in ("prepare", "queue", "start"):
        expect_ok(operator.act(card_id, action))

    expect_ok(operator.act(card_id, "exception", reason="card spoiled"))

    assert "sensitiveDataPurgedAt" not in issuer.operation(card_id)["details"]
    assert _row(server, card_id).sensitive_data is not None


def test_with_a_retention_the_worker_sweep_purges_later_and_says_so(
    server: Server, issuer: ActingIssuerClient
) -> None:
    platform, a_day = server.platform, Retention(timedelta(hours=24))
    keeping = unit_of_work_factory(platform.engine, retention=a_day)  # as the settings would
    card_id = _order(issuer, _card())
    for action in (Action.PREPARE, Action.QUEUE, Action.START, Action.COMPLETE):
        perform(action, issuer_id=DEMO, card_id=card_id, uow=keeping(), clock=platform.clock)
    done_at = platform.clock()
    assert "sensitiveDataPurgedAt" not in issuer.operation(card_id)["details"]

    early = purge_expired(
        uow=keeping(), clock=lambda: done_at + timedelta(hours=23), retention=a_day
    )
    assert early == 0
    assert _row(server, card_id).sensitive_data is not None

    late = purge_expired(
        uow=keeping(), clock=lambda: done_at + timedelta(hours=25), retention=a_day
    )

    assert late == 1
    assert _row(server, card_id).sensitive_data is None
    last = journal(platform.engine, card_id)[-1]
    assert last.event_type == "order.sensitive_data_purged"
    assert last.payload["details"]["status"] == "CARD_PROD_DONE"
    assert (
        issuer.operation(card_id)["details"]["sensitiveDataPurgedAt"]
        == last.payload["details"]["sensitiveDataPurgedAt"]
    )
    assert _audit_actions(server, card_id)[-1] == "sensitive_data.purged"
    assert (
        purge_expired(uow=keeping(), clock=lambda: done_at + timedelta(days=9), retention=a_day)
        == 0
    )
