"""The audit trail as rows: append and read, nothing else."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuance.db.bulk_rows import AUDIT, audit_values, insert_rows
from issuance.db.models import AuditRow
from issuance.db.moments import utc
from issuance.domain.audit import Actor, ActorKind, AuditEntry


class SqlAuditLog:
    """Entries wait for the unit of work's commit (or a read of the trail), then go in together.

    An entry added to the ORM session cost its flush a row of bookkeeping and a key read back:
    with a production report's 500 lines per transaction, part of the 17% the session's flush
    took (bench/production_report.py). One Core insert per transaction writes the same rows.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._pending: list[dict[str, Any]] = []

    def record(self, entry: AuditEntry) -> None:
        """Added to the caller's transaction: the entry commits with the change, or neither."""
        self._pending.append(audit_values(entry))

    def write(self) -> None:
        """Insert the entries recorded since the last write, in order, in the open transaction."""
        if self._pending:
            pending, self._pending = self._pending, []
            insert_rows(self.session.connection(), AUDIT, pending)

    def forget(self) -> None:
        """The transaction is over (rolled back, or failed): its entries go with it."""
        self._pending.clear()

    def entries(
        self,
        *,
        issuer_id: str | None = None,
        card_id: str | None = None,
        actor_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        self.write()  # this transaction's own entries are part of the trail it reads
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
