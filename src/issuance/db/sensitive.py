"""Sealed sensitive data: finding what to purge, reading a batch for its export, re-wrapping.

Re-wrapping (a master key rotation) touches only `sensitive_data` and `sensitive_key_id`, with
a Core UPDATE guarded by the key id it read: a concurrent purge (which nulls both) or another
re-wrap wins, and the row is simply left alone. It does not bump the order's version, so it
never makes a workflow change fail.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from issuance.db.models import OrderRow
from issuance.domain.orders import Order
from issuance.services.unit_of_work import SealedOrder

Track = Callable[[OrderRow], Order]


class SqlSensitiveDataRepository:
    def __init__(self, session: Session, track: Track) -> None:
        self.session = session
        self._track = track

    def purgeable(self, *, before: datetime, limit: int) -> list[Order]:
        rows = self.session.scalars(
            select(OrderRow)
            .where(
                OrderRow.purgeable_since <= before,
                OrderRow.sensitive_data_purged_at.is_(None),
            )
            .order_by(OrderRow.purgeable_since)
            .limit(limit)
        )
        return [self._track(row) for row in rows]

    def sealed_in_batch(self, batch: str) -> list[SealedOrder]:
        rows = self.session.scalars(
            select(OrderRow).where(OrderRow.production_batch == batch).order_by(OrderRow.card_id)
        )
        return [
            SealedOrder(self._track(row), row.sensitive_data, row.sensitive_key_id) for row in rows
        ]


def wrapped_counts(engine: Engine) -> dict[str, int]:
    """Orders holding sensitive data, by the master key that wraps their data key."""
    query = (
        select(OrderRow.sensitive_key_id, func.count())
        .where(OrderRow.sensitive_key_id.is_not(None))
        .group_by(OrderRow.sensitive_key_id)
    )
    with engine.connect() as connection:
        return {str(kid): int(count) for kid, count in connection.execute(query)}


def wrapped_by(engine: Engine, *, key_id: str) -> int:
    """How many orders hold data whose data key `key_id` wraps."""
    return wrapped_counts(engine).get(key_id, 0)


Rewrap = Callable[[bytes, str, str | None], bytes]  # (blob, context, legacy key id) -> blob


def rewrap_all(
    engine: Engine,
    *,
    current_key_id: str,
    rewrap: Rewrap,
    context_of: Callable[[str, str], str],
    batch_size: int = 500,
) -> int:
    """Re-wrap every data key not yet under `current_key_id`, batch by batch; how many were.

    Orders placed meanwhile by processes still wrapping with the old key are caught by the next
    batch; the loop ends when none is left.
    """
    done = 0
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                select(
                    OrderRow.operation_id,
                    OrderRow.issuer_id,
                    OrderRow.card_id,
                    OrderRow.sensitive_key_id,
                    OrderRow.sensitive_data,
                )
                .where(
                    OrderRow.sensitive_key_id.is_not(None),
                    OrderRow.sensitive_key_id != current_key_id,
                )
                .limit(batch_size)
            ).all()
            for row in rows:
                blob = rewrap(
                    row.sensitive_data, context_of(row.issuer_id, row.card_id), row.sensitive_key_id
                )
                connection.execute(
                    update(OrderRow)
                    .where(
                        OrderRow.operation_id == row.operation_id,
                        OrderRow.sensitive_key_id == row.sensitive_key_id,
                    )
                    .values(sensitive_data=blob, sensitive_key_id=current_key_id)
                )
        done += len(rows)
        if len(rows) < batch_size:
            return done
