"""The sandbox bureau over real HTTP: one order per scenario, checked after every simulator step.

Each test orders one card, then moves the sandbox clock an hour and runs one simulator round at a
time. After every step it reads `productionStatus` and the event journal in the database and
checks both against the scenario's expected path, written out below: the order's status at each
step, one new event per step whose payload is the operation the API shows, sequences 1..n.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import Server
from tests.factories import (
    ActingIssuerClient,
    JournalEntry,
    advance_clock,
    journal,
    new_card_id,
    order_body,
    tick,
)

ACCEPTED = "order.accepted"
STATUS_CHANGED = "order.status_changed"
HELD = "order.held"
RELEASED = "order.released"
SHIPMENT_UPDATED = "order.shipment_updated"

CANCELLABLE = {"CARD_PROD_REQUESTED", "DATA_PREPARED", "CARD_PROD_READY", "CARD_PROD_EXCEPTION"}
"""Steps at which an issuer may still cancel: `details.cancellableUntil` is shown only there."""
BATCHED = {"CARD_PROD_READY", "CARD_PROD_EXCEPTION", "CARD_PROD_ONGOING", "CARD_PROD_DONE"}
BATCH_FILE = re.compile(r"^PC-PARIS_DEMO-DEBIT_STANDARD_\d{8}-\d{4}\.json$")
PARIS = ZoneInfo("Europe/Paris")
HOUR = 3600  # seconds of sandbox time between two simulator rounds


@dataclass(frozen=True)
class Step:
    """What the order looks like after one step, and the one event the step writes."""

    status: str  # details.status
    event: str = STATUS_CHANGED
    operation: str = "PENDING"  # the top-level status
    shipment: str | None = None  # details.shipment.status
    on_hold: str | None = None  # details.onHold
    error_code: str | None = None
    by: str = "tick"  # "tick": a simulator round; "RESHIP" / "DESTROY": the issuer's decision


REQUESTED = Step("CARD_PROD_REQUESTED", event=ACCEPTED)
TO_DONE = [
    Step("CARD_PROD_ONGOING"),
    Step("CARD_PROD_DONE"),
]
SHIPPED = Step("CARD_SHIPPED", operation="SUCCESSFUL", shipment="IN_TRANSIT")
DELIVERED = Step(
    "CARD_SHIPPED", event=SHIPMENT_UPDATED, operation="SUCCESSFUL", shipment="DELIVERED"
)
TO_RETURNED = [
    Step("DATA_PREPARED"),
    Step("CARD_PROD_READY"),
    *TO_DONE,
    SHIPPED,
    Step("CARD_SHIPPED", SHIPMENT_UPDATED, "SUCCESSFUL", shipment="UNDELIVERABLE"),
    Step("CARD_SHIPPED", SHIPMENT_UPDATED, "SUCCESSFUL", shipment="RETURNED"),
]

PATHS: dict[str, list[Step]] = {
    "SUCCESS": [Step("DATA_PREPARED"), Step("CARD_PROD_READY"), *TO_DONE, SHIPPED, DELIVERED],
    "OUT_OF_STOCK": [
        Step("DATA_PREPARED"),
        Step("CARD_PROD_READY"),
        Step("CARD_PROD_EXCEPTION", error_code="OUT_OF_STOCK"),
        Step("CARD_PROD_READY"),
        *TO_DONE,
        SHIPPED,
        DELIVERED,
    ],
    "DATA_EXCEPTION": [
        Step("DATA_EXCEPTION", operation="FAILED", error_code="INVALID_PERSONALIZATION_DATA"),
    ],
    "ON_HOLD": [
        Step("DATA_PREPARED"),
        Step("DATA_PREPARED", event=HELD, on_hold="BUREAU"),
        Step("DATA_PREPARED", event=RELEASED),
        Step("CARD_PROD_READY"),
        *TO_DONE,
        SHIPPED,
        DELIVERED,
    ],
    "RETURNED-RESHIP": [
        *TO_RETURNED,
        Step("CARD_SHIPPED", SHIPMENT_UPDATED, "SUCCESSFUL", shipment="IN_TRANSIT", by="RESHIP"),
        DELIVERED,
    ],
    "RETURNED-DESTROY": [
        *TO_RETURNED,
        Step("CARD_SHIPPED", SHIPMENT_UPDATED, "SUCCESSFUL", shipment="DESTROYED", by="DESTROY"),
    ],
    "CANCELLED": [
        Step("CARD_PROD_CANCELED", operation="FAILED", error_code="CARD_PROD_CANCELED"),
    ],
}


class Walk:
    """One card driven step by step, with the checks every step must pass."""

    def __init__(self, server: Server, http: httpx.Client, issuer: ActingIssuerClient) -> None:
        self.server, self.http, self.issuer = server, http, issuer
        self.card_id = new_card_id()
        self.seen: list[JournalEntry] = []
        self.due_date: str | None = None

    def order(self, **fields: Any) -> None:
        answer = self.issuer.order(self.card_id, order_body(self.issuer.encrypt(), **fields))
        assert answer.status_code == 202, answer.text
        self.check(REQUESTED, label="ordered")

    def take(self, step: Step, label: str) -> None:
        if step.by == "tick":
            advance_clock(self.http, HOUR, headers=self.issuer.headers)
            assert tick(self.http, headers=self.issuer.headers) == 1, (
                f"{label}: the simulator should move the order once"
            )
        else:
            self.stays()  # the simulator waits for the issuer's decision
            answer = self.issuer.decide_return(self.card_id, step.by)
            assert answer.status_code == 200, f"{label}: {answer.text}"
        self.check(step, label=label)

    def check(self, step: Step, *, label: str) -> dict[str, Any]:
        operation = self.issuer.operation(self.card_id)
        details = operation["details"]
        seen = {
            "status": operation["status"],
            "details.status": details["status"],
            "shipment": details.get("shipment", {}).get("status"),
            "onHold": details.get("onHold"),
            "errorCode": operation.get("errorCode"),
            "endTime set": "endTime" in operation,
            "cancellableUntil shown": "cancellableUntil" in details,
        }
        expected = {
            "status": step.operation,
            "details.status": step.status,
            "shipment": step.shipment,
            "onHold": step.on_hold,
            "errorCode": step.error_code,
            "endTime set": step.operation != "PENDING",
            "cancellableUntil shown": step.status in CANCELLABLE,
        }
        assert seen == expected, f"after step {label!r}"
        self.due_date = self.due_date or details["dueDate"]
        assert details["dueDate"] == self.due_date, f"{label}: the due date must not move"
        self._check_journal(step, operation, label=label)
        return operation

    def _check_journal(self, step: Step, operation: dict[str, Any], *, label: str) -> None:
        events = journal(self.server.platform.engine, self.card_id)
        assert [e.sequence for e in events] == list(range(1, len(events) + 1)), label
        assert events[: len(self.seen)] == self.seen, f"{label}: earlier events changed"
        new = events[len(self.seen) :]
        assert [(e.event_type, e.status) for e in new] == [(step.event, step.status)], (
            f"after step {label!r}: expected exactly one {step.event} event at {step.status}"
        )
        assert new[0].payload == operation, f"{label}: the event must carry the operation shown"
        assert operation["sequence"] == new[0].sequence
        self.seen = events

    def stays(self) -> None:
        """One more round changes nothing: the path is over (or waits for someone else)."""
        advance_clock(self.http, HOUR, headers=self.issuer.headers)
        assert tick(self.http, headers=self.issuer.headers) == 0
        assert journal(self.server.platform.engine, self.card_id) == self.seen


def _walk(walk: Walk, path: list[Step]) -> dict[str, Any]:
    for number, step in enumerate(path, start=1):
        walk.take(step, label=f"{number}: {step.by} → {step.status} {step.shipment or ''}")
    walk.stays()
    return walk.issuer.operation(walk.card_id)


@pytest.fixture
def walk(server: Server, http: httpx.Client) -> Walk:
    return Walk(server, http, ActingIssuerClient(http))


@pytest.mark.parametrize("name", sorted(PATHS))
def test_each_scenario_follows_its_path_one_event_per_step(walk: Walk, name: str) -> None:
    scenario = name.split("-")[0]
    answer = walk.issuer.set_scenario(walk.card_id, scenario)  # before ordering: allowed
    assert answer.status_code == 200, answer.text
    walk.order()

    final = _walk(walk, PATHS[name])

    if name in {"SUCCESS", "OUT_OF_STOCK", "ON_HOLD", "RETURNED-RESHIP"}:
        assert final["status"] == "SUCCESSFUL"
        assert final["details"]["shipment"]["status"] == "DELIVERED"
        assert final["details"]["shipment"]["carrier"] == "la-poste-colissimo"  # laposte-lettre
        assert final["details"]["shipment"]["trackingNumber"].startswith("SIM")
    if name == "DATA_EXCEPTION":
        assert final["error"] == "the cardholder name does not fit the print area"
        assert final["details"]["reason"] == final["error"]
    if name == "CANCELLED":
        assert final["details"]["status"] == "CARD_PROD_CANCELED"
    assert final["endTime"] >= final["startTime"]
    _check_batch_file(walk, went_to_production=name not in {"DATA_EXCEPTION", "CANCELLED"})


def _check_batch_file(walk: Walk, *, went_to_production: bool) -> None:
    """`details.productionBatch` appears at CARD_PROD_READY, named after the centre-local batch
    time; `inputFileName` (the issuer's order file) is left alone."""
    names = {e.payload["details"].get("productionBatch") for e in walk.seen}
    if not went_to_production:
        assert names == {None}
        return
    batched = next(e for e in walk.seen if e.status == "CARD_PROD_READY")
    name = batched.payload["details"]["productionBatch"]
    assert BATCH_FILE.match(name), name
    assert name.endswith(f"_{batched.occurred_at.astimezone(PARIS):%Y%m%d-%H%M}.json")
    for event in walk.seen:
        before_batch = event.sequence < batched.sequence
        assert event.payload["details"].get("productionBatch") == (None if before_batch else name)
        assert "inputFileName" not in event.payload  # ordered by API, not from a file
        assert "inputFileName" not in event.payload["details"]


def test_a_magic_consumer_id_picks_the_scenario(walk: Walk) -> None:
    walk.order(consumerId="sim-data-exception-1")

    final = _walk(walk, PATHS["DATA_EXCEPTION"])

    assert final["errorCode"] == "INVALID_PERSONALIZATION_DATA"
    assert final["details"]["status"] == "DATA_EXCEPTION"
