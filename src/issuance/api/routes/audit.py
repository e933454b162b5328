"""`GET /operator/v1/audit`: who did what to which order, and when (newest first)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from issuance.api.deps import CurrentOperator, PlatformDep
from issuance.contract.common import CARD_ID_PATTERN, ISSUER_ID_PATTERN
from issuance.domain.audit import AuditEntry
from issuance.domain.operations import iso_utc
from issuance.services import audit

router = APIRouter(prefix="/operator/v1", tags=["Operator"])


def _wire(entry: AuditEntry) -> dict[str, Any]:
    fields = {
        "auditId": entry.audit_id,
        "at": iso_utc(entry.at),
        "actorKind": entry.actor.kind.value,
        "actor": entry.actor.actor_id,
        "actorIssuerId": entry.actor.issuer_id,
        "action": entry.action,
        "issuerId": entry.issuer_id,
        "cardId": entry.card_id,
        "operationId": entry.operation_id,
        "detail": entry.detail,
    }
    return {k: v for k, v in fields.items() if v is not None}


@router.get("/audit", summary="The audit trail: who did what to which order, newest first")
def audit_trail(
    _operator: CurrentOperator,
    platform: PlatformDep,
    issuer_id: Annotated[str | None, Query(alias="issuerId", pattern=ISSUER_ID_PATTERN)] = None,
    card_id: Annotated[str | None, Query(alias="cardId", pattern=CARD_ID_PATTERN)] = None,
    actor: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="client or operator id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Append-only: orders placed and replayed, issuer and operator actions, sandbox controls,
    key rotations, purges and exports of sensitive data. Never card data."""
    entries = audit.trail(
        uow=platform.reader(), issuer_id=issuer_id, card_id=card_id, actor_id=actor, limit=limit
    )
    return {"entries": [_wire(entry) for entry in entries]}
