"""Which report of an operation is the newer: the rules the receiver and the reconciler share.

Notifications arrive more than once and out of order. With the platform's per-card `sequence`
the answer is exact: the higher sequence is the later event. A real D1 sends no sequence, and
only `startTime`/`endTime`, which do not move while an order is pending; then, in this order:

1. an operation never leaves a final state (`CARD_SHIPPED` never goes back to
   `CARD_PROD_ONGOING`; a `FAILED` one never becomes `PENDING` again);
2. a final report beats a pending one;
3. a later `endTime` (else `startTime`) wins;
4. between two steps of the forward path (requested → prepared → ready → ongoing → done) the
   further one wins;
5. otherwise (an exception and its resumption, a hold, a shipment update, a status value this
   kit does not know) a report not seen before is taken as the newer one.

Rule 5 can be wrong for a stale report that was never delivered in time; only the on-demand
`productionStatus` can settle that, which is what the reconciler asks for. The reconciler's
reports are "authoritative": without sequences they replace what is stored (rule 1 aside).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from issuance.contract.operations import Operation

FINAL_STATUSES = frozenset({"SUCCESSFUL", "FAILED"})
FINAL_STEPS = frozenset({"CARD_SHIPPED", "DATA_EXCEPTION", "CARD_PROD_CANCELED"})
FORWARD_PATH = {
    "CARD_PROD_REQUESTED": 1,
    "DATA_PREPARED": 2,
    "CARD_PROD_READY": 3,
    "CARD_PROD_ONGOING": 4,
    "CARD_PROD_DONE": 5,
}
"""Steps that only move forward. `CARD_PROD_EXCEPTION` is left out: it goes back to ready."""


def _moment(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:  # an unreadable time orders nothing, and breaks nothing
        return None


@dataclass(frozen=True, slots=True)
class Report:
    """What the rules need to know of one operation object."""

    status: str
    step: str
    sequence: int | None
    moment: datetime | None  # endTime, else startTime
    ended: bool

    @classmethod
    def of(cls, operation: Operation) -> Report:
        return cls(
            status=operation.status,
            step=operation.details.status,
            sequence=operation.sequence,
            moment=_moment(operation.end_time) or _moment(operation.start_time),
            ended=operation.end_time is not None,
        )

    @property
    def final(self) -> bool:
        return self.ended or self.status in FINAL_STATUSES or self.step in FINAL_STEPS


def supersedes(incoming: Report, stored: Report, *, authoritative: bool = False) -> bool:
    """Whether `incoming`, a report not received before, replaces `stored`."""
    if stored.final and not incoming.final:
        return False
    if incoming.sequence is not None and stored.sequence is not None:
        return incoming.sequence > stored.sequence
    if authoritative or (incoming.final and not stored.final):
        return True
    if incoming.moment and stored.moment and incoming.moment != stored.moment:
        return _comparable(incoming.moment, stored.moment)
    ranks = FORWARD_PATH.get(incoming.step), FORWARD_PATH.get(stored.step)
    if ranks[0] is not None and ranks[1] is not None:
        return ranks[0] >= ranks[1]
    return True


def _comparable(later: datetime, earlier: datetime) -> bool:
    try:
        return later > earlier
    except TypeError:  # one time with a zone, one without: no order, take the new report
        return True


def content(raw: dict[str, Any]) -> dict[str, Any]:
    """The operation without its `sequence`: what the issuer sees as its state."""
    return {key: value for key, value in raw.items() if key != "sequence"}


def event_key(raw: dict[str, Any], sequence: int | None) -> str:
    """What identifies one report of an operation: its sequence, else a digest of its content.

    Sequences are per card and never reused, so `(operationId, sequence)` names one event.
    Without one, two reports are the same event exactly when their content is the same.
    """
    if sequence is not None:
        return f"seq:{sequence}"
    canonical = json.dumps(content(raw), sort_keys=True, separators=(",", ":"))
    return "sha:" + hashlib.sha256(canonical.encode()).hexdigest()[:40]
