"""The retention sweep: destroy sensitive data kept past `ISSUANCE_SENSITIVE_RETENTION_HOURS`.

With the default retention (none) an order's data goes in the change that makes it useless
(domain/orders.py); with a retention, the worker's schedule calls `purge_expired`, and each
purge is an event (`details.sensitiveDataPurgedAt` appears) and an audit entry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from issuance.domain.retention import Retention
from issuance.services.unit_of_work import Collision, UnitOfWork


def purge_expired(
    *, uow: UnitOfWork, clock: Callable[[], datetime], retention: Retention, limit: int = 1000
) -> int:
    """Purge what `retention` no longer allows to keep; how many orders were purged."""
    with uow:
        now = clock()
        purged = sum(
            order.purge_sensitive_data(at=now, retention=retention)
            for order in uow.sensitive.purgeable(before=now - retention.keep_for, limit=limit)
        )
        try:
            uow.commit()
        except Collision:  # an order changed meanwhile: the next round purges it
            return 0
        return purged
