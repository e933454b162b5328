"""The sandbox bureau: moves each order along its path, one step per `step` of (sandbox) time.

A card follows `SUCCESS` unless a scenario was set for it through the sandbox API, or its
`consumerId` names one (`sim-out-of-stock-42` → OUT_OF_STOCK), the way card-network sandboxes
read magic values. Scenarios:

    SUCCESS          requested → prepared → ready (batch) → ongoing → done → shipped → delivered
    OUT_OF_STOCK     … ready → CARD_PROD_EXCEPTION (OUT_OF_STOCK) → ready again → … delivered
    DATA_EXCEPTION   requested → DATA_EXCEPTION (INVALID_PERSONALIZATION_DATA)
    ON_HOLD          … prepared → held by the bureau → released → … delivered
    RETURNED         … shipped → undeliverable → returned, then waits for the issuer's decision
                     (re-shipped: delivered; destroyed: done)
    CANCELLED        requested → CARD_PROD_CANCELED, as if the issuer had cancelled
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from issuance.domain.audit import SIMULATOR
from issuance.domain.containers import ContainerStatus
from issuance.domain.errors import DomainError
from issuance.domain.orders import Order
from issuance.domain.statuses import Hold, ProductionStatus, ShipmentStatus
from issuance.services import containers, workflow
from issuance.services.unit_of_work import UnitOfWork
from issuance.services.workflow import Action

_S = ProductionStatus
_MAGIC = re.compile(r"^sim-(success|out-of-stock|data-exception|on-hold|returned|cancelled)(?:-|$)")


class Scenario(StrEnum):
    SUCCESS = "SUCCESS"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    DATA_EXCEPTION = "DATA_EXCEPTION"
    ON_HOLD = "ON_HOLD"
    RETURNED = "RETURNED"
    CANCELLED = "CANCELLED"


class ScenarioStore(Protocol):
    def get(self, issuer_id: str, card_id: str) -> tuple[str, int] | None: ...

    def put(self, issuer_id: str, card_id: str, scenario: str, stage: int = 0) -> None: ...


@dataclass(frozen=True, slots=True)
class Step:
    """What the simulator does next to an order, and the scenario stage after it."""

    action: Action
    stage: int
    reason: str | None = None
    error_code: str | None = None


_HAPPY: dict[ProductionStatus, Action] = {
    _S.CARD_PROD_REQUESTED: Action.PREPARE,
    _S.CARD_PROD_READY: Action.START,
    _S.CARD_PROD_ONGOING: Action.COMPLETE,
    _S.CARD_PROD_DONE: Action.SHIP,
}


def scenario_of(order: Order, stored: tuple[str, int] | None) -> tuple[Scenario, int]:
    if stored is not None:
        return Scenario(stored[0]), stored[1]
    match = _MAGIC.match(order.consumer_id or "")
    return (Scenario(match.group(1).upper().replace("-", "_")) if match else Scenario.SUCCESS), 0


def next_step(order: Order, scenario: Scenario, stage: int) -> Step | None:  # noqa: C901 (one table)
    """The next move of `order` on its scenario's path; None when it waits (or is done)."""
    status, shipment = order.production_status, order.shipment.status if order.shipment else None
    if scenario is Scenario.DATA_EXCEPTION and status is _S.CARD_PROD_REQUESTED:
        return Step(
            Action.FAIL,
            stage,
            "the cardholder name does not fit the print area",
            "INVALID_PERSONALIZATION_DATA",
        )
    if scenario is Scenario.CANCELLED and status is _S.CARD_PROD_REQUESTED:
        return Step(Action.CANCEL, stage, "cancelled by the issuer (simulated)")
    if scenario is Scenario.ON_HOLD and status is _S.DATA_PREPARED and stage == 0:
        return Step(Action.HOLD, 1, "quality check of the personalization data (simulated)")
    if scenario is Scenario.ON_HOLD and order.hold is Hold.BUREAU and stage == 1:
        return Step(Action.RELEASE, 2)
    if scenario is Scenario.OUT_OF_STOCK and status is _S.CARD_PROD_READY and stage == 0:
        return Step(
            Action.EXCEPTION, 1, "card body stock exhausted (simulated)", workflow.OUT_OF_STOCK
        )
    if scenario is Scenario.OUT_OF_STOCK and status is _S.CARD_PROD_EXCEPTION and stage == 1:
        return Step(Action.RESUME, 2, "stock replenished (simulated)")
    if order.hold is not Hold.NONE:
        return None
    if order.container is not None and (status is _S.CARD_PROD_DONE or shipment is not None):
        return None  # a BULK card moves with its container (services/containers.simulate)
    if status in _HAPPY:
        return Step(_HAPPY[status], stage)
    if scenario is Scenario.RETURNED and shipment is ShipmentStatus.IN_TRANSIT and stage == 0:
        return Step(Action.UNDELIVERABLE, 1, "addressee unknown")
    if scenario is Scenario.RETURNED and shipment is ShipmentStatus.UNDELIVERABLE:
        return Step(Action.RETURN, 2, "returned to sender")
    if shipment is ShipmentStatus.IN_TRANSIT:
        return Step(Action.DELIVER, stage, "delivered")
    return None


@dataclass
class Simulator:
    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    scenarios: ScenarioStore
    step: timedelta = timedelta(seconds=5)
    batch_size: int = 500

    def tick(self) -> int:
        """One round: batch what is prepared, move every order whose step time has passed."""
        now = self.clock()
        moved = 0
        for order in self._due(now):
            scenario, stage = scenario_of(order, self.scenarios.get(order.issuer_id, order.card_id))
            step = next_step(order, scenario, stage)
            if step is None:
                continue
            try:
                workflow.perform(
                    step.action,
                    issuer_id=order.issuer_id,
                    card_id=order.card_id,
                    uow=self.uow(),
                    clock=self.clock,
                    reason=step.reason,
                    error_code=step.error_code,
                    tracking_number=f"SIM{order.operation_id.replace('-', '')[:12].upper()}",
                    actor=SIMULATOR,
                )
            except DomainError:
                continue  # changed meanwhile (an operator, the issuer, real stock): next round
            if step.stage != stage or scenario is not Scenario.SUCCESS:
                self.scenarios.put(order.issuer_id, order.card_id, scenario.value, step.stage)
            moved += 1
        moved += sum(
            len(cards)
            for cards in workflow.batch_production(
                uow=self.uow(), clock=self.clock, prepared_before=now - self.step, actor=SIMULATOR
            ).values()
        )
        moved += self._move_containers(now)
        workflow.review_sla(uow=self.uow(), clock=self.clock)
        return moved

    def _move_containers(self, now: datetime) -> int:
        """BULK containers: an OPEN one ships once all its cards are personalized (until then
        the refusal is expected and it waits); one IN_TRANSIT for a step is received at its
        branch. Handing the cards over stays the branch's (operator's) action."""
        moved = 0
        with self.uow() as uow:
            due = uow.containers.unchanged_since(
                (ContainerStatus.OPEN.value, ContainerStatus.IN_TRANSIT.value),
                before=now - self.step,
                limit=self.batch_size,
            )
        for container in due:
            keys = {"issuer_id": container.issuer_id, "group_id": container.group_id}
            try:
                if container.status is ContainerStatus.OPEN:
                    tracking = "SIM" + "".join(c for c in container.group_id.upper() if c.isalnum())
                    containers.ship(
                        **keys,
                        carrier=None,
                        tracking_number=tracking[:32],
                        tracking_url=None,
                        uow=self.uow(),
                        clock=self.clock,
                        actor=SIMULATOR,
                    )
                else:
                    containers.receive(**keys, uow=self.uow(), clock=self.clock, actor=SIMULATOR)
            except DomainError:
                continue  # not ready yet, or changed meanwhile: next round
            moved += 1
        return moved

    def _due(self, now: datetime) -> list[Order]:
        with self.uow() as uow:
            orders = uow.orders.in_flight(limit=self.batch_size)
        return [o for o in orders if o.updated_at is None or now - o.updated_at >= self.step]
