"""The console acts as the signed-in operator: the audit trail names them, as for the API."""

from __future__ import annotations

from issuance.api.audit_trail import record_action
from issuance.api.console.session import Session
from issuance.domain.audit import Actor, ActorKind
from issuance.platform import Platform


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
    """As the signed-in operator."""
    record_action(platform, operator(session), action, detail, issuer_id=issuer_id, card_id=card_id)
