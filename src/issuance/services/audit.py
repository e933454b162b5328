"""The audit trail's use cases: record who did what (with the change, when there is one), read it."""

from __future__ import annotations

from datetime import datetime

from issuance.domain.audit import Actor, AuditEntry
from issuance.domain.orders import Order
from issuance.services.unit_of_work import UnitOfWork


def audit_order(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    order: Order,
    *,
    at: datetime,
    detail: str | None = None,
) -> None:
    """Record an action on `order` in the unit of work's transaction: both commit, or neither."""
    uow.audit.record(
        AuditEntry(
            at=at,
            actor=actor,
            action=action,
            issuer_id=order.issuer_id,
            card_id=order.card_id,
            operation_id=order.operation_id,
            detail=detail,
        )
    )


def record(entry: AuditEntry, *, uow: UnitOfWork) -> None:
    """Record an action that changes no order (sandbox controls, key rotations) on its own."""
    with uow:
        uow.audit.record(entry)
        uow.commit()


def trail(
    *,
    uow: UnitOfWork,
    issuer_id: str | None = None,
    card_id: str | None = None,
    actor_id: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries, newest first, filtered by order and/or actor."""
    with uow:
        return uow.audit.entries(
            issuer_id=issuer_id, card_id=card_id, actor_id=actor_id, limit=limit
        )
