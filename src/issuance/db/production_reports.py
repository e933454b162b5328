"""The ledger of production-report lines applied: a line seen before is not applied again."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuance.db.models import BureauEventRow
from issuance.db.moments import utc
from issuance.db.repositories import PRELOAD_CHUNK


class SqlBureauEventLedger:
    """Rows recorded in this transaction are also remembered, so a look-up needs no flush; the
    lines of preloaded operations are all known, so a look-up for them needs no query."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.recorded: set[tuple[str, str, datetime]] = set()
        self.preloaded: set[str] = set()

    def preload(self, operation_ids: Collection[str]) -> None:
        missing = sorted(set(operation_ids) - self.preloaded)
        for start in range(0, len(missing), PRELOAD_CHUNK):
            chunk = missing[start : start + PRELOAD_CHUNK]
            b = BureauEventRow
            rows = self.session.execute(
                select(b.operation_id, b.event, b.occurred_at).where(b.operation_id.in_(chunk))
            )
            self.recorded.update((op, event, utc(at)) for op, event, at in rows)
            self.preloaded.update(chunk)

    def applied(self, operation_id: str, event: str, occurred_at: datetime) -> bool:
        moment = occurred_at.astimezone(UTC)
        if (operation_id, event, moment) in self.recorded:
            return True
        if operation_id in self.preloaded:
            return False
        with self.session.no_autoflush:
            found = self.session.scalar(
                select(BureauEventRow.bureau_event_id).where(
                    BureauEventRow.operation_id == operation_id,
                    BureauEventRow.event == event,
                    BureauEventRow.occurred_at == moment,
                )
            )
        return found is not None

    def record(
        self, operation_id: str, event: str, occurred_at: datetime, *, at: datetime, report: str
    ) -> None:
        self.recorded.add((operation_id, event, occurred_at.astimezone(UTC)))
        self.session.add(
            BureauEventRow(
                operation_id=operation_id,
                event=event,
                occurred_at=occurred_at.astimezone(UTC),
                recorded_at=at,
                report=report[:255],
            )
        )
