"""Production batches after the cut-off (the worker's schedule) and the SLA flags, over time."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from issuance.api.errors import schema_problems
from issuance.db.models import EventRow
from issuance.domain.audit import PLATFORM
from issuance.services import workflow
from issuance.services.importing import Importer, LineReport
from issuance.services.order_files import Record
from issuance.services.workflow import Action
from tests.conftest import Server
from tests.factories import DEMO, IssuerClient, new_card_id, order_body


def test_prepared_orders_are_batched_once_their_cut_off_has_passed(
    http: httpx.Client, server: Server
) -> None:
    issuer, platform = IssuerClient(http), server.platform
    cards = [new_card_id() for _ in range(3)]
    for card_id in cards:
        assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
        workflow.perform(
            Action.PREPARE,
            issuer_id=issuer.issuer_id,
            card_id=card_id,
            uow=platform.uow(),
            clock=platform.clock,
        )
    cut_off = issuer.status(cards[0]).json()["operations"][0]["details"]["cancellableUntil"]

    assert (
        workflow.batch_production(uow=platform.uow(), clock=platform.clock, after_cut_off=True)
        == {}
    )

    # Past the cut-off, whatever the weekday: on a Friday it falls on Monday, not two days on.
    until_cut_off = datetime.fromisoformat(cut_off) - platform.clock()
    past_it = int(until_cut_off.total_seconds()) + 3600
    http.post("/sandbox/v1/clock:advance", json={"seconds": past_it}, headers=issuer.headers)
    batches = workflow.batch_production(
        uow=platform.uow(), clock=platform.clock, after_cut_off=True
    )

    [(name, batched)] = batches.items()
    assert sorted(batched) == sorted(cards)
    assert name.startswith("PC-PARIS_DEMO-DEBIT_STANDARD_")
    for card_id in cards:
        operation = issuer.status(card_id).json()["operations"][0]
        assert operation["details"]["status"] == "CARD_PROD_READY"
        assert operation["details"]["productionBatch"] == name
        assert "inputFileName" not in operation  # ordered by API: no issuer file
        assert (
            operation["details"]["cancellableUntil"] == cut_off
        )  # still cancellable until it starts


def test_sla_flags_at_risk_then_late_with_one_event_each(
    http: httpx.Client, server: Server
) -> None:
    issuer, platform = IssuerClient(http), server.platform
    card_id = new_card_id()
    assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202

    assert workflow.review_sla(uow=platform.uow(), clock=platform.clock) == 0  # on time: no news
    operation = issuer.status(card_id).json()["operations"][0]
    received = datetime.fromisoformat(operation["startTime"])
    due = datetime.fromisoformat(operation["details"]["dueDate"])

    def standing_at(moment: datetime) -> str | None:
        """Move the sandbox clock to `moment`, review, and read the card's standing."""
        seconds = (
            moment
            - datetime.fromisoformat(
                http.get("/sandbox/v1/clock", headers=issuer.headers).json()["now"]
            )
        ).total_seconds()
        http.post("/sandbox/v1/clock:advance", json={"seconds": seconds}, headers=issuer.headers)
        workflow.review_sla(uow=platform.uow(), clock=platform.clock)
        details = issuer.status(card_id).json()["operations"][0]["details"]
        standing: str | None = details.get("slaStanding")
        return standing

    # The at-risk stretch is the last fifth of the window: aim inside it, whatever time it is now.
    standings = [
        standing_at(received + (due - received) * 0.9),
        standing_at(due + timedelta(hours=1)),
    ]

    assert standings == ["AT_RISK", "LATE"]
    with platform.engine.connect() as connection:
        kinds = connection.scalars(
            select(EventRow.event_type)
            .where(EventRow.card_id == card_id)
            .order_by(EventRow.sequence)
        ).all()
    assert list(kinds) == [
        "order.accepted",
        "order.sla_standing_changed",
        "order.sla_standing_changed",
    ]


def test_the_batch_name_does_not_overwrite_the_issuers_file_name(
    http: httpx.Client, server: Server
) -> None:
    """`inputFileName` stays the issuer's order file; the batch is `details.productionBatch`."""
    issuer, platform = IssuerClient(http), server.platform
    card_id = new_card_id()
    importer = Importer(
        issuer_id=DEMO,
        file_name="portfolio-2026-12.jsonl",
        uow=platform.uow,
        keys=platform.intake_keys,
        clock=platform.clock,
        new_id=platform.new_id,
        actor=PLATFORM,
        schema_problems=lambda error: schema_problems([dict(e) for e in error.errors()]),
    )
    reports: list[LineReport] = []
    importer.run([Record(1, {"cardId": card_id, **order_body(issuer.encrypt())})], reports.extend)
    assert [r.result.value for r in reports] == ["ACCEPTED"]
    workflow.perform(
        Action.PREPARE, issuer_id=DEMO, card_id=card_id, uow=platform.uow(), clock=platform.clock
    )

    [(name, _cards)] = workflow.batch_production(uow=platform.uow(), clock=platform.clock).items()

    operation = issuer.status(card_id).json()["operations"][0]
    assert operation["inputFileName"] == "portfolio-2026-12.jsonl"
    assert operation["details"]["inputFileName"] == "portfolio-2026-12.jsonl"
    assert operation["details"]["productionBatch"] == name
