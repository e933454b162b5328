"""The Order aggregate: one PRODUCE operation for one card, and the only way to change it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from issuance.domain.containers import ContainerRef
from issuance.domain.errors import IllegalTransition
from issuance.domain.events import EventKind, OrderEvent
from issuance.domain.operations import operation_object
from issuance.domain.retention import PURGEABLE, Retention
from issuance.domain.statuses import (
    HOLD_TRANSITIONS,
    HOLDABLE,
    SHIPMENT_TRANSITIONS,
    TRANSITIONS,
    WHILE_HELD,
    Hold,
    OperationStatus,
    ProductionStatus,
    ShipmentStatus,
    is_final,
    operation_status,
)


@dataclass(frozen=True, slots=True)
class Shipment:
    """`details.shipment`: the carrier's view of the parcel."""

    carrier: str
    tracking_number: str | None = None
    tracking_url: str | None = None
    status: ShipmentStatus = ShipmentStatus.IN_TRANSIT
    message: str | None = None


@dataclass(slots=True)
class Order:
    """A card production order as D1 reports it: an operation with its issuance details.

    Every change goes through a method that consults a transition table, changes nothing when
    the move is illegal, and records the event the unit of work writes to the journal.
    """

    operation_id: str
    issuer_id: str
    card_id: str
    start_time: datetime
    production_status: ProductionStatus = ProductionStatus.CARD_PROD_REQUESTED
    issuer_request_id: str | None = None
    consumer_id: str | None = None
    card_product_id: str | None = None
    input_file_name: str | None = None  # the issuer's order file (`issuance orders import`)
    production_batch: str | None = None  # the batch file it goes to the machines in
    end_time: datetime | None = None
    due_date: datetime | None = None
    cancellable_until: datetime | None = None
    production_site: str | None = None
    error_code: str | None = None
    error: str | None = None
    reason: str | None = None
    hold: Hold = Hold.NONE
    shipment: Shipment | None = None
    sla_standing: str | None = None
    priority: str | None = None  # services.priority: production batches are grouped by it
    materials: tuple[str, ...] = ()  # stock items production consumes, one unit each
    updated_at: datetime | None = None
    purgeable_since: datetime | None = None  # when its sensitive data stopped being needed
    sensitive_data_purged_at: datetime | None = None
    container: ContainerRef | None = None  # BULK: the first-level container it travels in
    # The retention policy, given by the unit of work that loads the order; without one (a bare
    # domain object) nothing is purged as the order moves.
    retention: Retention | None = field(default=None, compare=False, repr=False)
    events: list[OrderEvent] = field(default_factory=list)

    @classmethod
    def accept(
        cls,
        *,
        operation_id: str,
        issuer_id: str,
        card_id: str,
        at: datetime,
        issuer_request_id: str | None = None,
        consumer_id: str | None = None,
        card_product_id: str | None = None,
        input_file_name: str | None = None,
        due_date: datetime | None = None,
        cancellable_until: datetime | None = None,
        production_site: str | None = None,
        priority: str | None = None,
        materials: tuple[str, ...] = (),
        container: ContainerRef | None = None,
    ) -> Order:
        """A new order at `CARD_PROD_REQUESTED`, with its acceptance recorded."""
        order = cls(
            operation_id=operation_id,
            issuer_id=issuer_id,
            card_id=card_id,
            start_time=at,
            issuer_request_id=issuer_request_id,
            consumer_id=consumer_id,
            card_product_id=card_product_id,
            input_file_name=input_file_name,
            due_date=due_date,
            cancellable_until=cancellable_until,
            production_site=production_site,
            priority=priority,
            materials=materials,
            container=container,
        )
        order._record(EventKind.ACCEPTED, at)
        return order

    def operation(self, *, sequence: int | None = None) -> dict[str, Any]:
        """This order as a D1 operation object."""
        return operation_object(self, sequence=sequence)

    @property
    def status(self) -> OperationStatus:
        return operation_status(self.production_status)

    def move_to(
        self,
        target: ProductionStatus,
        *,
        at: datetime,
        reason: str | None = None,
        error_code: str | None = None,
        error: str | None = None,
        shipment: Shipment | None = None,
    ) -> None:
        """Apply one legal production step; an illegal one raises and changes nothing.

        `CARD_SHIPPED` needs the `shipment` it starts; a failure or an exception carries an
        `errorCode` (the step's name when none is given) and the `reason` as `error`.
        """
        self.check_move(target)
        if (target is ProductionStatus.CARD_SHIPPED) != (shipment is not None):
            raise IllegalTransition(
                "a shipment is given when, and only when, the card is shipped",
                field="shipment.carrier",
            )
        self.production_status = target
        self.reason = reason
        failing = (
            self.status is OperationStatus.FAILED or target is ProductionStatus.CARD_PROD_EXCEPTION
        )
        self.error_code = (error_code or target.value) if failing else None
        self.error = (error or reason) if failing else None
        if shipment is not None:
            self.shipment = replace(shipment, status=ShipmentStatus.IN_TRANSIT)
        if is_final(target):
            self.end_time = at
            self.hold = Hold.NONE
        if target in PURGEABLE and self.purgeable_since is None:
            self.purgeable_since = at
        if self.retention is not None and self._purge_due(at, self.retention):
            self.sensitive_data_purged_at = at  # in this very change: its event shows it
        self._record(EventKind.STATUS_CHANGED, at)

    def _purge_due(self, at: datetime, retention: Retention) -> bool:
        return self.sensitive_data_purged_at is None and retention.purge_due(
            purgeable_since=self.purgeable_since, now=at
        )

    def purge_sensitive_data(self, *, at: datetime, retention: Retention) -> bool:
        """Destroy the sensitive data once `retention` allows it (an event); False if not yet."""
        if not self._purge_due(at, retention):
            return False
        self.sensitive_data_purged_at = at
        self._record(EventKind.SENSITIVE_DATA_PURGED, at)
        return True

    def check_move(self, target: ProductionStatus) -> None:
        """Raise `IllegalTransition` unless `target` is a legal next step now."""
        if target not in TRANSITIONS[self.production_status]:
            raise IllegalTransition(
                f"card {self.card_id} cannot move from {self.production_status} to {target}",
                field="details.status",
            )
        if self.hold is not Hold.NONE and target not in WHILE_HELD:
            raise IllegalTransition(
                f"card {self.card_id} is on hold ({self.hold}): release it first",
                field="details.status",
                code="ORDER_ON_HOLD",
            )

    def put_on_hold(self, by: Hold, *, at: datetime, reason: str) -> None:
        """Hold the order back; only production steps that cancel or fail it remain possible."""
        legal = by is not Hold.NONE and by in HOLD_TRANSITIONS[self.hold]
        if not legal or self.production_status not in HOLDABLE:
            raise IllegalTransition(
                f"card {self.card_id} cannot be held at {self.production_status} (hold: {self.hold})",
                field="hold",
            )
        self.hold, self.reason = by, reason
        self._record(EventKind.HELD, at)

    def release(self, *, at: datetime, by: Hold | None = None) -> None:
        """Lift the hold; `by`, when given, must be who holds it (an issuer cannot lift the
        bureau's quality hold, nor the bureau an issuer's fraud review)."""
        if Hold.NONE not in HOLD_TRANSITIONS[self.hold]:
            raise IllegalTransition(f"card {self.card_id} is not on hold", field="hold")
        if by is not None and by is not self.hold:
            raise IllegalTransition(
                f"card {self.card_id} is held by {self.hold}; only they can release it",
                field="hold",
                code="HOLD_NOT_YOURS",
            )
        self.hold, self.reason = Hold.NONE, None
        self._record(EventKind.RELEASED, at)

    def update_shipment(
        self, status: ShipmentStatus, *, at: datetime, message: str | None = None, **changes: str
    ) -> None:
        """A carrier report (delivered, returned…) or a re-shipment with new `changes`."""
        current = self.shipment.status if self.shipment else None
        if self.shipment is None or status not in SHIPMENT_TRANSITIONS[current]:
            raise IllegalTransition(
                f"the shipment of card {self.card_id} cannot move from {current} to {status}",
                field="details.shipment.status",
            )
        self.shipment = replace(self.shipment, status=status, message=message, **changes)
        self._record(EventKind.SHIPMENT_UPDATED, at)

    def hand_to_cardholder(self, *, at: datetime) -> None:
        """The branch handed this BULK card to its cardholder (once, after receiving it)."""
        if self.container is None:
            raise IllegalTransition(
                f"card {self.card_id} is not in a container",
                field="cardId",
                code="NOT_IN_CONTAINER",
            )
        shipment = self.shipment.status if self.shipment else None
        self.container = self.container.handed_over(shipment=shipment, at=at)
        self._record(EventKind.HANDED_TO_CARDHOLDER, at)

    def mark_sla(self, standing: str, *, at: datetime) -> None:
        """Record that the order became at risk of missing its due date, or late."""
        if standing != self.sla_standing:
            self.sla_standing = standing
            self._record(EventKind.SLA_STANDING_CHANGED, at)

    def _record(self, kind: EventKind, at: datetime) -> None:
        self.updated_at = at
        self.events.append(OrderEvent(kind, self.operation_id, at, self.operation()))
