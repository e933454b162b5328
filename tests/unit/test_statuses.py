"""The issuance step table and the operation status each step implies."""

from __future__ import annotations

import pytest

from issuance.domain.statuses import (
    TRANSITIONS,
    OperationStatus,
    ProductionStatus,
    is_final,
    operation_status,
)
from tests.unit.builders import LEGAL_MOVES

S = ProductionStatus


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(ProductionStatus)


def test_the_table_holds_exactly_the_legal_moves() -> None:
    table = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
    assert table == LEGAL_MOVES  # each move is also applied to an Order in test_orders.py


def test_no_status_moves_to_itself() -> None:
    assert all(status not in TRANSITIONS[status] for status in ProductionStatus)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (S.CARD_PROD_REQUESTED, OperationStatus.PENDING),
        (S.DATA_PREPARED, OperationStatus.PENDING),
        (S.CARD_PROD_READY, OperationStatus.PENDING),
        (S.CARD_PROD_ONGOING, OperationStatus.PENDING),
        (S.CARD_PROD_DONE, OperationStatus.PENDING),
        (S.CARD_SHIPPED, OperationStatus.SUCCESSFUL),
        (S.DATA_EXCEPTION, OperationStatus.FAILED),
        (S.CARD_PROD_CANCELED, OperationStatus.FAILED),
    ],
)
def test_operation_status_of_each_step(status: ProductionStatus, expected: OperationStatus) -> None:
    assert operation_status(status) is expected


@pytest.mark.parametrize("status", list(ProductionStatus))
def test_final_steps_are_exactly_those_with_no_way_out(status: ProductionStatus) -> None:
    assert is_final(status) == (not TRANSITIONS[status])


def test_final_steps_are_shipped_exception_and_cancelled() -> None:
    finals = {status for status in ProductionStatus if is_final(status)}
    assert finals == {S.CARD_SHIPPED, S.DATA_EXCEPTION, S.CARD_PROD_CANCELED}


def test_every_status_is_reachable_from_requested() -> None:
    reached = {S.CARD_PROD_REQUESTED}
    frontier = [S.CARD_PROD_REQUESTED]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(ProductionStatus)
