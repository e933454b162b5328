"""BULK shipments: cards travel to a branch in tracked containers, two levels deep.

D1's shipment guide: `shipment.groupId` groups cards into a **first-level container**;
`shipment.orderId` groups several first-level containers into a **second-level container**
(e.g. `container-001` inside `dispatch-2026-02-19`). A first-level container is the unit we
track: one per (issuer, groupId), with the orderId it travels in, its carrier and tracking, and
a status that moves by the table below. Every card in it follows: shipping the container ships
its cards, a carrier report or the branch's receipt moves each card's shipment (one event per
card), and the branch hands each card to its cardholder on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from issuance.domain.errors import Conflict, DomainError, IllegalTransition, InvalidRequest
from issuance.domain.statuses import ShipmentStatus

CONTAINER_TRANSITION_CODE = "ILLEGAL_CONTAINER_TRANSITION"


class ContainerStatus(StrEnum):
    """Where a first-level container is (`details.container.status` on each of its cards)."""

    OPEN = "OPEN"  # gathering its cards at the bureau; nothing shipped yet
    IN_TRANSIT = "IN_TRANSIT"  # handed to the carrier with its tracking number
    UNDELIVERABLE = "UNDELIVERABLE"  # the carrier could not deliver it; on its way back
    RETURNED = "RETURNED"  # back at the bureau; may be shipped again
    RECEIVED_AT_BRANCH = "RECEIVED_AT_BRANCH"  # the branch confirmed receipt (final)


_C = ContainerStatus

CONTAINER_TRANSITIONS: dict[ContainerStatus, frozenset[ContainerStatus]] = {
    _C.OPEN: frozenset({_C.IN_TRANSIT}),
    _C.IN_TRANSIT: frozenset({_C.RECEIVED_AT_BRANCH, _C.UNDELIVERABLE, _C.RETURNED}),
    _C.UNDELIVERABLE: frozenset({_C.RETURNED}),
    _C.RETURNED: frozenset({_C.IN_TRANSIT}),
    _C.RECEIVED_AT_BRANCH: frozenset(),
}
"""Legal moves of a container. RETURNED → IN_TRANSIT is a re-shipment (new tracking)."""

CARD_SHIPMENT: dict[ContainerStatus, ShipmentStatus] = {
    _C.IN_TRANSIT: ShipmentStatus.IN_TRANSIT,
    _C.UNDELIVERABLE: ShipmentStatus.UNDELIVERABLE,
    _C.RETURNED: ShipmentStatus.RETURNED,
    _C.RECEIVED_AT_BRANCH: ShipmentStatus.DELIVERED,  # delivered to the branch
}
"""The `details.shipment.status` each card in the container takes when the container moves."""

CARRIER_REPORTS = frozenset({_C.UNDELIVERABLE, _C.RETURNED})
"""What a carrier's tracking update (`:track`) may report; shipping and receipt have their own
actions, since they need a tracking number or the branch's word."""


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """A card's view of its container: what its operation shows as `details.container`."""

    group_id: str
    order_id: str | None = None
    status: ContainerStatus = ContainerStatus.OPEN
    carrier: str | None = None
    tracking_number: str | None = None
    handed_to_cardholder_at: datetime | None = None  # by the branch, per card

    def handed_over(self, *, shipment: ShipmentStatus | None, at: datetime) -> ContainerRef:
        """The branch handed this card to its cardholder: only once, only after receipt."""
        received = self.status is _C.RECEIVED_AT_BRANCH and shipment is ShipmentStatus.DELIVERED
        if not received or self.handed_to_cardholder_at is not None:
            raise IllegalTransition(
                f"a card of container {self.group_id} can be handed to its cardholder once, "
                f"after the branch received it (container {self.status}, "
                f"handed over: {self.handed_to_cardholder_at is not None})",
                field="details.container.status",
                code=CONTAINER_TRANSITION_CODE,
            )
        return replace(self, handed_to_cardholder_at=at)


def container_of_request(shipment: dict[str, Any] | None) -> ContainerRef | None:
    """The container a BULK order's `shipment` (camelCase, as accepted) names, if any."""
    if not shipment or shipment.get("type") != "BULK" or not shipment.get("groupId"):
        return None
    return ContainerRef(group_id=shipment["groupId"], order_id=shipment.get("orderId"))


@dataclass(slots=True)
class Container:
    """A first-level container with its tracking. Each change checks the transition table."""

    issuer_id: str
    group_id: str
    created_at: datetime
    order_id: str | None = None  # the second-level container it travels in
    status: ContainerStatus = ContainerStatus.OPEN
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    message: str | None = None
    shipped_at: datetime | None = None
    received_at: datetime | None = None
    updated_at: datetime | None = None

    def ref(self, *, handed_to_cardholder_at: datetime | None = None) -> ContainerRef:
        return ContainerRef(
            group_id=self.group_id,
            order_id=self.order_id,
            status=self.status,
            carrier=self.carrier,
            tracking_number=self.tracking_number,
            handed_to_cardholder_at=handed_to_cardholder_at,
        )

    def check_move(self, target: ContainerStatus) -> None:
        """Raise `IllegalTransition` (409) unless `target` is a legal next status now."""
        if target not in CONTAINER_TRANSITIONS[self.status]:
            raise IllegalTransition(
                f"container {self.group_id} cannot move from {self.status} to {target}",
                field="status",
                code=CONTAINER_TRANSITION_CODE,
            )

    def ship(
        self,
        *,
        carrier: str,
        tracking_number: str | None,
        tracking_url: str | None,
        at: datetime,
    ) -> None:
        """Hand the container to the carrier (from OPEN, or again once RETURNED)."""
        self.check_move(_C.IN_TRANSIT)
        self.carrier, self.tracking_number, self.tracking_url = (
            carrier,
            tracking_number,
            tracking_url,
        )
        self._move(_C.IN_TRANSIT, at=at, message=None)
        self.shipped_at = at

    def report(self, status: ContainerStatus, *, at: datetime, message: str | None) -> None:
        """A carrier's tracking update: undeliverable, or returned to the bureau."""
        if status not in CARRIER_REPORTS:
            raise IllegalTransition(
                f"a carrier report is one of {', '.join(sorted(CARRIER_REPORTS))}, not {status}",
                field="status",
                code=CONTAINER_TRANSITION_CODE,
            )
        self.check_move(status)
        self._move(status, at=at, message=message)

    def receive(self, *, at: datetime, message: str | None) -> None:
        """The branch confirms it received the container."""
        self.check_move(_C.RECEIVED_AT_BRANCH)
        self._move(_C.RECEIVED_AT_BRANCH, at=at, message=message)
        self.received_at = at

    def _move(self, target: ContainerStatus, *, at: datetime, message: str | None) -> None:
        self.status, self.message, self.updated_at = target, message, at


def refusal_to_join(container: Container, wanted: ContainerRef) -> DomainError | None:
    """Why a new card for `wanted` cannot go into `container` (its first-level container).

    A first-level container sits in one second-level container, and takes cards only until it
    is shipped: another `orderId`, or a container already on its way, is refused.
    """
    if container.order_id != wanted.order_id:
        return InvalidRequest(
            f"container {container.group_id} travels in second-level container "
            f"{container.order_id or '(none)'}, not {wanted.order_id or '(none)'}",
            field="shipment.orderId",
            code="BULK_CONTAINER_MISMATCH",
        )
    if container.status is not ContainerStatus.OPEN:
        return Conflict(
            f"container {container.group_id} was already shipped ({container.status}); "
            "use another groupId",
            field="shipment.groupId",
            code="CONTAINER_ALREADY_SHIPPED",
        )
    return None
