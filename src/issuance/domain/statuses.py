"""The physical card issuance status (`details.status`) and the operation status it implies.

D1 reports two levels: the operation `status` (PENDING / SUCCESSFUL / FAILED) and the issuance
step in `details.status`. The step decides the operation status; this module holds that mapping
and the table of legal moves, so that every change of state goes through one check.
"""

from __future__ import annotations

from enum import StrEnum


class OperationStatus(StrEnum):
    """Top-level `status` of a PRODUCE operation."""

    PENDING = "PENDING"  # still moving through production or shipment
    SUCCESSFUL = "SUCCESSFUL"  # the card was handed to the carrier (or to the bulk container)
    FAILED = "FAILED"  # rejected or cancelled: the card will not be produced


class ProductionStatus(StrEnum):
    """`details.status`: the step the card has reached."""

    CARD_PROD_REQUESTED = "CARD_PROD_REQUESTED"  # accepted through the API
    DATA_PREPARED = "DATA_PREPARED"  # personalization data processed
    DATA_EXCEPTION = "DATA_EXCEPTION"  # data processing failed; the card is rejected
    CARD_PROD_READY = "CARD_PROD_READY"  # data sent to the personalization centre
    CARD_PROD_ONGOING = "CARD_PROD_ONGOING"  # being personalized
    CARD_PROD_DONE = "CARD_PROD_DONE"  # personalized, being prepared for shipment
    CARD_SHIPPED = "CARD_SHIPPED"  # handed to the carrier
    CARD_PROD_CANCELED = "CARD_PROD_CANCELED"  # cancelled by the issuer


_FAILED = frozenset({ProductionStatus.DATA_EXCEPTION, ProductionStatus.CARD_PROD_CANCELED})
_SUCCESSFUL = frozenset({ProductionStatus.CARD_SHIPPED})


def operation_status(status: ProductionStatus) -> OperationStatus:
    """The operation status a step implies: final steps end the operation."""
    if status in _FAILED:
        return OperationStatus.FAILED
    if status in _SUCCESSFUL:
        return OperationStatus.SUCCESSFUL
    return OperationStatus.PENDING


def is_final(status: ProductionStatus) -> bool:
    """Whether the operation is over (it then carries an `endTime`)."""
    return operation_status(status) is not OperationStatus.PENDING


_S = ProductionStatus

TRANSITIONS: dict[ProductionStatus, frozenset[ProductionStatus]] = {
    _S.CARD_PROD_REQUESTED: frozenset({_S.DATA_PREPARED, _S.DATA_EXCEPTION, _S.CARD_PROD_CANCELED}),
    _S.DATA_PREPARED: frozenset({_S.CARD_PROD_READY, _S.DATA_EXCEPTION, _S.CARD_PROD_CANCELED}),
    _S.CARD_PROD_READY: frozenset({_S.CARD_PROD_ONGOING, _S.CARD_PROD_CANCELED}),
    _S.CARD_PROD_ONGOING: frozenset({_S.CARD_PROD_DONE}),
    _S.CARD_PROD_DONE: frozenset({_S.CARD_SHIPPED}),
    _S.CARD_SHIPPED: frozenset(),
    _S.DATA_EXCEPTION: frozenset(),
    _S.CARD_PROD_CANCELED: frozenset(),
}
"""Legal moves of `details.status`. The workflow issue refines this table (on-hold, exceptions
during personalization, shipment layer); everything that changes a status consults it."""
