"""Status reads in a request thread (SQLite's path, and an app without `StatusReads`): one Core
SELECT past the unit of work, answering what the repository reads, on both databases."""

from __future__ import annotations

from issuance.db.status_reads import for_card_blocking
from issuance.platform import Platform
from tests.factories import DEMO
from tests.integration.test_status_reads import card_with_history


def test_the_thread_answers_what_the_repository_reads(platform: Platform) -> None:
    card_id = card_with_history(platform)

    with platform.reader() as uow:
        expected = [o.operation(sequence=s) for o, s in uow.orders.for_card(DEMO, card_id)]
    read = for_card_blocking(platform.engine, DEMO, card_id)

    assert [o.operation(sequence=s) for o, s in read] == expected
    assert [(op["details"]["status"], op["sequence"]) for op in expected] == [
        ("DATA_EXCEPTION", 2),
        ("CARD_SHIPPED", 8),
    ]


def test_a_card_without_orders_reads_as_none(platform: Platform) -> None:
    assert for_card_blocking(platform.engine, DEMO, "nobody") == []
