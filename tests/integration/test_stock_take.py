"""Taking stock for a card: every unit it needs, or none. Both databases."""

from __future__ import annotations

from issuance.platform import Platform
from tests.factories import DEMO


def _stock(platform: Platform, **levels: int) -> None:
    with platform.uow() as uow:
        for item, quantity in levels.items():
            uow.stock.replenish(DEMO, item, quantity - uow.stock.levels(DEMO).get(item, 0))
        uow.commit()


def _levels(platform: Platform, *items: str) -> dict[str, int]:
    with platform.reader() as uow:
        levels = uow.stock.levels(DEMO)
    return {item: levels.get(item, 0) for item in items}


def _take(platform: Platform, *items: str) -> list[str]:
    with platform.uow() as uow:
        missing = uow.stock.take(DEMO, items)
        uow.commit()
    return missing


def test_a_card_takes_one_unit_of_each_item_it_lists(platform: Platform) -> None:
    _stock(platform, BODY=3, LETTER=2)

    assert _take(platform, "BODY", "LETTER", "LETTER") == []  # an item listed twice: two units

    assert _levels(platform, "BODY", "LETTER") == {"BODY": 2, "LETTER": 0}


def test_a_shortfall_takes_nothing_and_names_what_ran_short(platform: Platform) -> None:
    _stock(platform, BODY=3, LETTER=1, BOX=0)

    assert _take(platform, "BODY", "LETTER", "LETTER") == ["LETTER"]  # one letter, two needed
    assert _take(platform, "BODY", "BOX", "LETTER") == ["BOX"]
    assert _take(platform, "BODY", "NEVER-STOCKED") == ["NEVER-STOCKED"]

    assert _levels(platform, "BODY", "LETTER", "BOX") == {"BODY": 3, "LETTER": 1, "BOX": 0}
    assert _take(platform, "BODY", "LETTER") == []
    assert _levels(platform, "BODY", "LETTER") == {"BODY": 2, "LETTER": 0}
