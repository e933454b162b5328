"""Orders preloaded by card (a production report's lines that name the card): the same answers
as the per-card query, and no query of their own. Both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from issuance.domain.audit import Actor, ActorKind
from issuance.domain.orders import Order
from issuance.domain.statuses import ProductionStatus
from issuance.platform import Platform
from issuance.services.order_files import Record
from issuance.services.production_reports import ReportImporter
from tests.factories import DEMO, new_card_id
from tests.outbox import statements

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def _order(card_id: str, number: int, minutes: int) -> Order:
    return Order.accept(
        operation_id=f"op{number}-{card_id}",
        issuer_id=DEMO,
        card_id=card_id,
        at=NOW + timedelta(minutes=minutes),
    )


def _failed(order: Order) -> Order:
    order.move_to(ProductionStatus.DATA_EXCEPTION, at=order.start_time, reason="bad data")
    return order


def _store(platform: Platform, *orders: Order) -> None:
    with platform.uow() as uow:
        for order in orders:
            uow.orders.add(order, request={}, fingerprint="f" * 64, sealed=None)
        uow.commit()


def _cards(platform: Platform) -> dict[str, str]:
    """Cards whose current order each rule picks: by name, the card id."""
    cards = {name: new_card_id() for name in ("none", "one", "retried", "ended", "late_start")}
    _store(platform, _order(cards["one"], 1, 0))
    # Failed, then ordered again: the order in progress is current.
    _store(platform, _failed(_order(cards["retried"], 1, 0)), _order(cards["retried"], 2, 5))
    # Both ended: the later start is current.
    _store(platform, _failed(_order(cards["ended"], 1, 0)), _failed(_order(cards["ended"], 2, 5)))
    # In progress wins over a later start that ended.
    _store(platform, _order(cards["late_start"], 1, 0), _failed(_order(cards["late_start"], 2, 9)))
    return cards


def test_preloaded_cards_answer_as_the_query_does_without_a_query(platform: Platform) -> None:
    cards = _cards(platform)
    with platform.reader() as uow:
        queried = {
            name: getattr(uow.orders.latest_for_card(DEMO, card_id), "operation_id", None)
            for name, card_id in cards.items()
        }
    assert queried == {
        "none": None,
        "one": f"op1-{cards['one']}",
        "retried": f"op2-{cards['retried']}",
        "ended": f"op2-{cards['ended']}",
        "late_start": f"op1-{cards['late_start']}",
    }

    with platform.reader() as uow, statements(platform.engine) as sent:
        loaded = uow.orders.preload_cards([(DEMO, card_id) for card_id in cards.values()])
        after_preload = len(sent)
        preloaded = {
            name: getattr(uow.orders.latest_for_card(DEMO, card_id), "operation_id", None)
            for name, card_id in cards.items()
        }

    assert preloaded == queried
    assert after_preload == 1, "one query for the issuer's cards"
    assert len(sent) == after_preload, "the preloaded cards need no query of their own"
    assert sorted(loaded) == sorted(
        f"op{n}-{cards[name]}"
        for name, n in [("one", 1)]
        + [(name, n) for name in ("retried", "ended", "late_start") for n in (1, 2)]
    )


def test_a_preloaded_card_follows_the_unit_of_work_changes(platform: Platform) -> None:
    cards = _cards(platform)
    with platform.uow() as uow:
        uow.orders.preload_cards([(DEMO, cards["ended"]), (DEMO, cards["one"])])
        again = _order(cards["ended"], 3, 10)
        uow.orders.add(again, request={}, fingerprint="f" * 64, sealed=None)
        assert uow.orders.latest_for_card(DEMO, cards["ended"]) is again

        current = uow.orders.latest_for_card(DEMO, cards["one"])
        assert current is not None
        _failed(current)  # ended in this unit of work: still the card's latest
        assert uow.orders.latest_for_card(DEMO, cards["one"]) is current
        uow.commit()

        after_commit = uow.orders.latest_for_card(DEMO, cards["ended"])  # read again
        assert after_commit is not None
        assert after_commit.operation_id == f"op3-{cards['ended']}"

    with platform.reader() as uow:
        for card_id, expected in ((cards["ended"], "op3"), (cards["one"], "op1")):
            found = uow.orders.latest_for_card(DEMO, card_id)
            assert found is not None
            assert found.operation_id == f"{expected}-{card_id}"


def test_a_report_naming_cards_reads_their_orders_once_per_batch(platform: Platform) -> None:
    cards = [new_card_id() for _ in range(6)]
    _store(platform, *(_order(card_id, 1, 0) for card_id in cards))
    at = (platform.clock() - timedelta(minutes=1)).isoformat()
    records = [
        Record(number, {"cardId": card_id, "issuerId": DEMO, "event": "DATA_EXCEPTION", "at": at})
        for number, card_id in enumerate(cards, start=1)
    ]
    importer = ReportImporter(
        "report.jsonl",
        uow=platform.uow,
        clock=platform.clock,
        actor=Actor(ActorKind.OPERATOR, "bureau"),
        schema_problems=lambda _: [],
        batch_size=3,
    )

    with statements(platform.engine) as sent:
        summary = importer.run(records, on_batch=lambda _: None)

    assert (summary.applied, summary.refused) == (6, 0)
    reads = [s.sql for s in sent if s.sql.lstrip().upper().startswith("SELECT")]
    assert sum("FROM orders" in sql for sql in reads) == 2, "one read of the orders per batch"
    assert sum("FROM bureau_events" in sql for sql in reads) == 2, "and one of the lines applied"
