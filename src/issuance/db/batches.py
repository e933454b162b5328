"""Production batches at a glance: each batch's centre, product, priority and cards per step.

One GROUP BY over the orders that carry a batch name (indexed), so listing costs no per-order
work in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from issuance.db.models import OrderRow


@dataclass
class BatchSummary:
    name: str
    centre_id: str | None
    card_product_id: str | None
    priority: str | None
    cards: int = 0
    with_card_data: int = 0  # cards whose sensitive data is still held (exportable)
    by_status: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "centreId": self.centre_id,
            "cardProductId": self.card_product_id,
            "priority": self.priority or "STANDARD",
            "cards": self.cards,
            "withCardData": self.with_card_data,
            "byStatus": self.by_status,
        }


def list_batches(engine: Engine, *, limit: int = 100) -> list[BatchSummary]:
    """The most recently named batches first (names end with the centre-local batch time)."""
    held = func.count(OrderRow.sensitive_data)  # COUNT(column) skips NULLs: purged data
    query = (
        select(
            OrderRow.production_batch,
            OrderRow.production_site,
            OrderRow.card_product_id,
            OrderRow.priority,
            OrderRow.production_status,
            func.count(),
            held,
        )
        .where(OrderRow.production_batch.is_not(None))
        .group_by(
            OrderRow.production_batch,
            OrderRow.production_site,
            OrderRow.card_product_id,
            OrderRow.priority,
            OrderRow.production_status,
        )
    )
    batches: dict[str, BatchSummary] = {}
    with engine.connect() as connection:
        for name, site, product, priority, status, count, with_data in connection.execute(query):
            summary = batches.setdefault(
                str(name), BatchSummary(str(name), site, product, priority)
            )
            summary.cards += int(count)
            summary.with_card_data += int(with_data)
            summary.by_status[status] = summary.by_status.get(status, 0) + int(count)
    newest = sorted(batches.values(), key=lambda b: (b.name.rsplit("_", 1)[-1], b.name))
    return newest[::-1][:limit]
