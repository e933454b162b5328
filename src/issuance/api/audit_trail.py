"""Audit entries for actions that change no order (replays, enables, sandbox controls)."""

from __future__ import annotations

from issuance.domain.audit import Actor, AuditEntry
from issuance.platform import Platform
from issuance.services import audit


def record_action(
    platform: Platform,
    actor: Actor,
    action: str,
    detail: str,
    *,
    issuer_id: str | None = None,
    card_id: str | None = None,
) -> None:
    entry = AuditEntry(
        at=platform.clock(),
        actor=actor,
        action=action,
        issuer_id=issuer_id,
        card_id=card_id,
        detail=detail,
    )
    audit.record(entry, uow=platform.uow())
