"""The console acts as the signed-in operator: the audit trail names them, as for the API."""

from __future__ import annotations

from issuance.api.console.session import Session
from issuance.domain.audit import Actor, ActorKind, AuditEntry
from issuance.platform import Platform
from issuance.services import audit


def operator(session: Session) -> Actor:
    return Actor(ActorKind.OPERATOR, session.operator_id or "unknown")


def record(
    platform: Platform,
    session: Session,
    action: str,
    detail: str,
    *,
    issuer_id: str | None = None,
    card_id: str | None = None,
) -> None:
    """An action that changes no order (replays, sandbox controls), on its own."""
    entry = AuditEntry(
        at=platform.clock(),
        actor=operator(session),
        action=action,
        issuer_id=issuer_id,
        card_id=card_id,
        detail=detail,
    )
    audit.record(entry, uow=platform.uow())
