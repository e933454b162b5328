"""The three transition tables, checked for shape, and a few facts about them written by hand.

The tables are exercised move by move on an `Order` in test_orders.py, generated from the tables
themselves; the hand-written sanity tests here are what catches a wrong table.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

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
    is_cancellable,
    is_final,
    operation_status,
)
from tests.unit.builders import shortest_path

S = ProductionStatus
FINALS = [status for status in ProductionStatus if is_final(status)]


# --- shape of the tables --------------------------------------------------------------------


def test_every_status_has_a_row_and_targets_only_statuses() -> None:
    assert set(TRANSITIONS) == set(ProductionStatus)
    assert all(targets <= set(ProductionStatus) for targets in TRANSITIONS.values())


def test_every_hold_has_a_row_and_targets_only_holds() -> None:
    assert set(HOLD_TRANSITIONS) == set(Hold)
    assert all(targets <= set(Hold) for targets in HOLD_TRANSITIONS.values())


def test_every_shipment_status_and_not_shipped_yet_have_a_row() -> None:
    assert set(SHIPMENT_TRANSITIONS) == {None, *ShipmentStatus}
    assert all(targets <= set(ShipmentStatus) for targets in SHIPMENT_TRANSITIONS.values())


@pytest.mark.parametrize(
    "table",
    [
        pytest.param(TRANSITIONS, id="production"),
        pytest.param(HOLD_TRANSITIONS, id="hold"),
        pytest.param(SHIPMENT_TRANSITIONS, id="shipment"),
    ],
)
def test_nothing_moves_to_itself(table: Mapping[Any, frozenset[Any]]) -> None:
    assert [state for state, targets in table.items() if state in targets] == []


@pytest.mark.parametrize("status", list(ProductionStatus))
def test_every_status_is_reachable_from_requested(status: ProductionStatus) -> None:
    path = [S.CARD_PROD_REQUESTED, *shortest_path(TRANSITIONS, S.CARD_PROD_REQUESTED, status)]

    assert path[-1] is status
    assert all(target in TRANSITIONS[source] for source, target in itertools.pairwise(path))


@pytest.mark.parametrize("status", list(ProductionStatus))
def test_every_status_can_still_end(status: ProductionStatus) -> None:
    """No loop without an exit: from anywhere, some final step can be reached."""
    assert any(_reaches(status, final) for final in FINALS)


def _reaches(source: ProductionStatus, goal: ProductionStatus) -> bool:
    try:
        shortest_path(TRANSITIONS, source, goal)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("status", list(ShipmentStatus))
def test_every_shipment_status_is_reachable_once_shipped(status: ShipmentStatus) -> None:
    assert shortest_path(SHIPMENT_TRANSITIONS, None, status)[-1] is status


@pytest.mark.parametrize("status", list(ProductionStatus))
def test_final_means_no_way_out_and_an_operation_that_is_over(status: ProductionStatus) -> None:
    assert is_final(status) == (not TRANSITIONS[status])
    assert is_final(status) == (operation_status(status) is not OperationStatus.PENDING)


@pytest.mark.parametrize("status", list(ProductionStatus))
def test_cancellable_means_cancel_is_a_legal_move(status: ProductionStatus) -> None:
    assert is_cancellable(status) == (S.CARD_PROD_CANCELED in TRANSITIONS[status])


def test_holdable_steps_are_steps_that_can_still_move() -> None:
    assert not [status for status in HOLDABLE if is_final(status)]


def test_a_held_order_can_only_end() -> None:
    """Every move allowed while held is final, so it clears the hold: a held order therefore
    always sits at a holdable step."""
    assert all(is_final(target) for target in WHILE_HELD)


def test_a_hold_is_put_then_released_never_handed_over() -> None:
    held = [hold for hold in Hold if hold is not Hold.NONE]
    handovers = [(a, b) for a, b in itertools.permutations(held, 2) if b in HOLD_TRANSITIONS[a]]

    assert HOLD_TRANSITIONS[Hold.NONE] == frozenset(held)
    assert all(HOLD_TRANSITIONS[hold] == {Hold.NONE} for hold in held)
    assert handovers == []


# --- facts written by hand, independent of the tables ----------------------------------------

D1_HAPPY_PATH = [
    S.CARD_PROD_REQUESTED,
    S.DATA_PREPARED,
    S.CARD_PROD_READY,
    S.CARD_PROD_ONGOING,
    S.CARD_PROD_DONE,
    S.CARD_SHIPPED,
]


@pytest.mark.parametrize(
    ("source", "target"),
    [pytest.param(s, t, id=f"{s}->{t}") for s, t in itertools.pairwise(D1_HAPPY_PATH)],
)
def test_the_d1_happy_path_is_legal(source: ProductionStatus, target: ProductionStatus) -> None:
    assert target in TRANSITIONS[source]


def test_shipped_data_exception_and_cancelled_are_the_final_steps() -> None:
    assert set(FINALS) == {S.CARD_SHIPPED, S.DATA_EXCEPTION, S.CARD_PROD_CANCELED}


@pytest.mark.parametrize(
    ("status", "cancellable"),
    [
        (S.CARD_PROD_REQUESTED, True),
        (S.DATA_PREPARED, True),
        (S.CARD_PROD_READY, True),
        # CARD_PROD_EXCEPTION is not pinned: the table lets it be cancelled, yet it also follows
        # CARD_PROD_ONGOING (a spoiled card), i.e. after personalization started. Open question.
        (S.CARD_PROD_ONGOING, False),  # personalization has started
        (S.CARD_PROD_DONE, False),
        (S.CARD_SHIPPED, False),
        (S.DATA_EXCEPTION, False),
        (S.CARD_PROD_CANCELED, False),
    ],
    ids=str,
)
def test_cancellation_is_possible_only_before_personalization(
    status: ProductionStatus, cancellable: bool
) -> None:
    assert is_cancellable(status) is cancellable


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (S.CARD_PROD_REQUESTED, OperationStatus.PENDING),
        (S.DATA_PREPARED, OperationStatus.PENDING),
        (S.CARD_PROD_READY, OperationStatus.PENDING),
        (S.CARD_PROD_EXCEPTION, OperationStatus.PENDING),  # resumable: not over
        (S.CARD_PROD_ONGOING, OperationStatus.PENDING),
        (S.CARD_PROD_DONE, OperationStatus.PENDING),
        (S.CARD_SHIPPED, OperationStatus.SUCCESSFUL),
        (S.DATA_EXCEPTION, OperationStatus.FAILED),
        (S.CARD_PROD_CANCELED, OperationStatus.FAILED),
    ],
    ids=str,
)
def test_operation_status_of_each_step(status: ProductionStatus, expected: OperationStatus) -> None:
    assert operation_status(status) is expected


def test_production_can_resume_after_an_exception() -> None:
    assert S.CARD_PROD_READY in TRANSITIONS[S.CARD_PROD_EXCEPTION]
    assert not is_final(S.CARD_PROD_EXCEPTION)


@pytest.mark.parametrize("status", [S.CARD_PROD_ONGOING, S.CARD_SHIPPED, S.CARD_PROD_CANCELED])
def test_no_hold_while_personalizing_or_once_gone(status: ProductionStatus) -> None:
    assert status not in HOLDABLE


def test_a_held_order_can_still_be_cancelled_or_failed() -> None:
    assert {S.CARD_PROD_CANCELED, S.DATA_EXCEPTION} <= WHILE_HELD
    assert S.CARD_SHIPPED not in WHILE_HELD


def test_a_returned_card_can_be_shipped_again_or_destroyed() -> None:
    returned = SHIPMENT_TRANSITIONS[ShipmentStatus.RETURNED]

    assert returned == {ShipmentStatus.IN_TRANSIT, ShipmentStatus.DESTROYED}


def test_a_shipment_starts_in_transit_and_ends_delivered_or_destroyed() -> None:
    assert SHIPMENT_TRANSITIONS[None] == {ShipmentStatus.IN_TRANSIT}
    ends = {status for status in ShipmentStatus if not SHIPMENT_TRANSITIONS[status]}
    assert ends == {ShipmentStatus.DELIVERED, ShipmentStatus.DESTROYED}
