"""The audit trail as rows: append and read, nothing else."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuance.db.models import AuditRow
from issuance.db.moments import utc
from issuance.domain.audit import Actor, ActorKind, AuditEntry


class SqlAuditLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, entry: AuditEntry) -> None:
        """Added to the caller's transaction: the entry commits with the change, or neither."""
        self.session.add(
            AuditRow(
                at=entry.at,
                actor_kind=entry.actor.kind.value,
                actor_id=entry.actor.actor_id,
                actor_issuer_id=entry.actor.issuer_id,
                action=entry.action,
                issuer_id=entry.issuer_id,
                card_id=entry.card_id,
                operation_id=entry.operation_id,
                detail=entry.detail,
            )
        )

    def entries(
        self,
        *,
        issuer_id: str | None = None,
        card_id: str | None = None,
        actor_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        query = select(AuditRow).order_by(AuditRow.audit_id.desc()).limit(limit)
        if issuer_id is not None:
            query = query.where(AuditRow.issuer_id == issuer_id)
        if card_id is not None:
            query = query.where(AuditRow.card_id == card_id)
        if actor_id is not None:
            query = query.where(AuditRow.actor_id == actor_id)
        return [
            AuditEntry(
                at=utc(row.at),
                actor=Actor(ActorKind(row.actor_kind), row.actor_id, row.actor_issuer_id),
                action=row.action,
                issuer_id=row.issuer_id,
                card_id=row.card_id,
                operation_id=row.operation_id,
                detail=row.detail,
                audit_id=row.audit_id,
            )
            for row in self.session.scalars(query)
        ]
