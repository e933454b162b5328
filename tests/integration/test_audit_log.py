"""The audit trail writes a transaction's entries together: with its commit, in the order they
were recorded, and never without it. Both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from issuance.domain.audit import Actor, ActorKind, AuditEntry
from issuance.platform import Platform
from tests.factories import DEMO, new_card_id

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
BUREAU = Actor(ActorKind.OPERATOR, "bureau")


def _entry(card_id: str, action: str) -> AuditEntry:
    return AuditEntry(at=NOW, actor=BUREAU, action=action, issuer_id=DEMO, card_id=card_id)


def _actions(platform: Platform, card_id: str) -> list[str]:
    with platform.reader() as uow:
        return [e.action for e in uow.audit.entries(card_id=card_id)]


def test_entries_commit_together_in_the_order_recorded(platform: Platform) -> None:
    card_id = new_card_id()
    with platform.uow() as uow:
        for action in ("order.start", "order.complete", "order.ship"):
            uow.audit.record(_entry(card_id, action))
        assert _actions(platform, card_id) == [], "nothing before the commit"
        uow.commit()

    assert _actions(platform, card_id) == ["order.ship", "order.complete", "order.start"]


def test_a_transaction_reads_its_own_entries_and_loses_them_with_a_rollback(
    platform: Platform,
) -> None:
    card_id = new_card_id()
    with platform.uow() as uow:
        uow.audit.record(_entry(card_id, "order.start"))
        assert [e.action for e in uow.audit.entries(card_id=card_id)] == ["order.start"]
        uow.audit.record(_entry(card_id, "order.complete"))
        uow.rollback()
        uow.audit.record(_entry(card_id, "order.hold"))
        uow.commit()

    assert _actions(platform, card_id) == ["order.hold"]

    with platform.uow() as uow:  # left without a commit
        uow.audit.record(_entry(card_id, "order.release"))
    assert _actions(platform, card_id) == ["order.hold"]
