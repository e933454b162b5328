"""Where an order stands: its production step, its hold, its shipment, and the legal moves of each.

D1 reports two levels: the operation `status` (PENDING / SUCCESSFUL / FAILED) and the issuance step
in `details.status`. The step decides the operation status. Every change of any of the three
state machines below is checked against its table here, so an illegal move is refused in one
place and changes nothing.
"""

from __future__ import annotations

from enum import StrEnum


class OperationStatus(StrEnum):
    """Top-level `status` of a PRODUCE operation."""

    PENDING = "PENDING"  # still moving through production
    SUCCESSFUL = "SUCCESSFUL"  # handed to the carrier; shipment updates may follow
    FAILED = "FAILED"  # rejected or cancelled: the card will not be produced


class ProductionStatus(StrEnum):
    """`details.status`: the step the card has reached."""

    CARD_PROD_REQUESTED = "CARD_PROD_REQUESTED"  # accepted through the API
    DATA_PREPARED = "DATA_PREPARED"  # personalization data processed
    DATA_EXCEPTION = "DATA_EXCEPTION"  # data processing failed; the card is rejected
    CARD_PROD_READY = "CARD_PROD_READY"  # in a production batch sent to the personalization centre
    CARD_PROD_EXCEPTION = "CARD_PROD_EXCEPTION"  # production stopped (e.g. out of stock); resumable
    CARD_PROD_ONGOING = "CARD_PROD_ONGOING"  # being personalized
    CARD_PROD_DONE = "CARD_PROD_DONE"  # personalized, being prepared for shipment
    CARD_SHIPPED = "CARD_SHIPPED"  # handed to the carrier
    CARD_PROD_CANCELED = "CARD_PROD_CANCELED"  # cancelled by the issuer (or the bureau)


_S = ProductionStatus

TRANSITIONS: dict[ProductionStatus, frozenset[ProductionStatus]] = {
    _S.CARD_PROD_REQUESTED: frozenset({_S.DATA_PREPARED, _S.DATA_EXCEPTION, _S.CARD_PROD_CANCELED}),
    _S.DATA_PREPARED: frozenset(
        {_S.CARD_PROD_READY, _S.DATA_EXCEPTION, _S.CARD_PROD_EXCEPTION, _S.CARD_PROD_CANCELED}
    ),
    _S.CARD_PROD_READY: frozenset(
        {_S.CARD_PROD_ONGOING, _S.CARD_PROD_EXCEPTION, _S.CARD_PROD_CANCELED}
    ),
    _S.CARD_PROD_EXCEPTION: frozenset(
        {_S.CARD_PROD_READY, _S.DATA_EXCEPTION, _S.CARD_PROD_CANCELED}
    ),
    _S.CARD_PROD_ONGOING: frozenset({_S.CARD_PROD_DONE, _S.CARD_PROD_EXCEPTION}),
    _S.CARD_PROD_DONE: frozenset({_S.CARD_SHIPPED}),
    _S.CARD_SHIPPED: frozenset(),
    _S.DATA_EXCEPTION: frozenset(),
    _S.CARD_PROD_CANCELED: frozenset(),
}
"""Legal moves of `details.status`. `CARD_PROD_EXCEPTION` (a value D1 documents for instant
issuance) is the resumable stop: back to `CARD_PROD_READY` when the cause is fixed, or failed as
`DATA_EXCEPTION`. A card spoiled during personalization goes back through it to be made again."""

_FAILED = frozenset({_S.DATA_EXCEPTION, _S.CARD_PROD_CANCELED})
_SUCCESSFUL = frozenset({_S.CARD_SHIPPED})


def operation_status(status: ProductionStatus) -> OperationStatus:
    """The operation status a step implies: final steps end the operation."""
    if status in _FAILED:
        return OperationStatus.FAILED
    if status in _SUCCESSFUL:
        return OperationStatus.SUCCESSFUL
    return OperationStatus.PENDING


def is_final(status: ProductionStatus) -> bool:
    """Whether the operation is over (it then carries an `endTime`)."""
    return not TRANSITIONS[status]


def is_cancellable(status: ProductionStatus) -> bool:
    """Cancellation is possible while no card is being personalized: before production starts,
    or in a production exception (a spoiled card waiting to be made again)."""
    return _S.CARD_PROD_CANCELED in TRANSITIONS[status]


class Hold(StrEnum):
    """Who holds an order back (our extension: D1 names no on-hold status)."""

    NONE = "NONE"  # not held
    BUREAU = "BUREAU"  # held by the personalization centre (e.g. a quality check)
    ISSUER = "ISSUER"  # held at the issuer's request (e.g. a fraud review)


HOLD_TRANSITIONS: dict[Hold, frozenset[Hold]] = {
    Hold.NONE: frozenset({Hold.BUREAU, Hold.ISSUER}),
    Hold.BUREAU: frozenset({Hold.NONE}),
    Hold.ISSUER: frozenset({Hold.NONE}),
}
"""A hold is put and released; it never passes from one holder to the other directly."""

HOLDABLE: frozenset[ProductionStatus] = frozenset(
    {
        _S.CARD_PROD_REQUESTED,
        _S.DATA_PREPARED,
        _S.CARD_PROD_READY,
        _S.CARD_PROD_EXCEPTION,
        _S.CARD_PROD_DONE,
    }
)
"""Steps at which an order can be held: not while a machine personalizes it, not once gone."""

WHILE_HELD: frozenset[ProductionStatus] = frozenset({_S.CARD_PROD_CANCELED, _S.DATA_EXCEPTION})
"""The only production moves a held order may make: it can still be cancelled or failed."""


class ShipmentStatus(StrEnum):
    """`details.shipment.status` after `CARD_SHIPPED`: what the carrier reports."""

    IN_TRANSIT = "IN_TRANSIT"  # with the carrier
    DELIVERED = "DELIVERED"  # delivered to the cardholder or the branch
    UNDELIVERABLE = "UNDELIVERABLE"  # the carrier could not deliver; on its way back
    RETURNED = "RETURNED"  # back at the bureau, waiting for the issuer's decision
    DESTROYED = "DESTROYED"  # the returned card was destroyed, as the issuer decided


SHIPMENT_TRANSITIONS: dict[ShipmentStatus | None, frozenset[ShipmentStatus]] = {
    None: frozenset({ShipmentStatus.IN_TRANSIT}),
    ShipmentStatus.IN_TRANSIT: frozenset(
        {ShipmentStatus.DELIVERED, ShipmentStatus.UNDELIVERABLE, ShipmentStatus.RETURNED}
    ),
    ShipmentStatus.UNDELIVERABLE: frozenset({ShipmentStatus.RETURNED}),
    ShipmentStatus.RETURNED: frozenset({ShipmentStatus.IN_TRANSIT, ShipmentStatus.DESTROYED}),
    ShipmentStatus.DELIVERED: frozenset(),
    ShipmentStatus.DESTROYED: frozenset(),
}
"""Legal moves of the shipment. RETURNED → IN_TRANSIT is a re-shipment the issuer decided."""
