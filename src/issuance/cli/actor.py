"""Who runs a command, for the audit trail: the operating-system user at the terminal."""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable
from datetime import UTC, datetime

from issuance.domain.audit import Actor, ActorKind, AuditAction, AuditEntry
from issuance.services import audit
from issuance.services.unit_of_work import UnitOfWork


def cli_actor() -> Actor:
    """`cli:alice`; `cli:unknown` where the system knows no name for the user (containers)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return Actor(ActorKind.OPERATOR, "cli:" + re.sub(r"[^A-Za-z0-9_.-]", "_", user)[:59])


def audit_command(
    uow: Callable[[], UnitOfWork],
    action: AuditAction,
    detail: str,
    *,
    issuer_id: str | None = None,
) -> None:
    """Record a command that changes no order (its order changes are audited as they happen)."""
    entry = AuditEntry(
        at=datetime.now(UTC), actor=cli_actor(), action=action, issuer_id=issuer_id, detail=detail
    )
    audit.record(entry, uow=uow())
