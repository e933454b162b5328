"""Which report of an operation is the newer, as a table (no database, no HTTP)."""

from __future__ import annotations

import pytest

from issuance.contract.operations import Operation
from issuance.kit.rules import Report, event_key, supersedes
from tests.kit.conftest import operation

END = "2026-11-26T16:00:00.000Z"


def report(step: str, sequence: int | None = None, **fields: str) -> Report:
    status = "SUCCESSFUL" if step == "CARD_SHIPPED" else "PENDING"
    body = operation("card-1", step, sequence=sequence, status=status, **fields)
    return Report.of(Operation.model_validate(body))


@pytest.mark.parametrize(
    ("incoming", "stored", "newer"),
    [
        (report("DATA_PREPARED", 2), report("CARD_PROD_REQUESTED", 1), True),
        (report("DATA_PREPARED", 2), report("CARD_PROD_READY", 3), False),
        (report("CARD_PROD_READY", 3), report("CARD_PROD_READY", 3), False),
        (report("CARD_PROD_ONGOING", 9), report("CARD_SHIPPED", 8, end=END), False),
        (report("CARD_SHIPPED", 9, end=END), report("CARD_SHIPPED", 8, end=END), True),
        (report("CARD_PROD_EXCEPTION", 5), report("CARD_PROD_ONGOING", 4), True),
        # without sequences (a real D1)
        (report("CARD_SHIPPED", end=END), report("CARD_PROD_ONGOING"), True),
        (report("CARD_PROD_ONGOING"), report("CARD_SHIPPED", end=END), False),
        (report("DATA_PREPARED"), report("CARD_PROD_READY"), False),
        (report("CARD_PROD_READY"), report("DATA_PREPARED"), True),
        (report("CARD_PROD_EXCEPTION"), report("CARD_PROD_ONGOING"), True),
        (report("CARD_PROD_READY"), report("CARD_PROD_EXCEPTION"), True),
        (report("SOMETHING_NEW"), report("CARD_PROD_READY"), True),
        (report("CARD_PROD_READY", start="2026-11-27T08:00:00Z"), report("CARD_PROD_DONE"), True),
        (report("CARD_PROD_DONE", start="2026-11-24T08:00:00Z"), report("CARD_PROD_READY"), False),
        # one with a sequence, one without: the time rules
        (report("CARD_PROD_READY", 3), report("CARD_PROD_ONGOING"), False),
    ],
)
def test_supersedes(incoming: Report, stored: Report, newer: bool) -> None:
    assert supersedes(incoming, stored) is newer


def test_the_on_demand_answer_is_authoritative_except_for_leaving_a_final_state() -> None:
    assert supersedes(report("DATA_PREPARED"), report("CARD_PROD_READY"), authoritative=True)
    shipped = report("CARD_SHIPPED", end=END)
    assert not supersedes(report("CARD_PROD_DONE"), shipped, authoritative=True)


def test_a_report_is_known_by_its_sequence_or_else_its_content() -> None:
    body = operation("card-1", "CARD_PROD_READY", sequence=None)
    assert event_key(body, 7) == "seq:7"
    assert event_key(body, None) == event_key(dict(reversed(body.items())), None)
    assert event_key(body, None) != event_key({**body, "status": "FAILED"}, None)
    assert event_key({**body, "sequence": 3}, None) == event_key(body, None)
