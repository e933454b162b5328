"""When sensitive card data is destroyed: once it has been used, or never will be.

The PAN, tracks and CSC are needed until the card is personalized. From `CARD_PROD_DONE` (the
data is on the card) or a final failure (`DATA_EXCEPTION`, `CARD_PROD_CANCELED`) they are kept
for the configured retention only, by default not at all. `CARD_PROD_EXCEPTION` is not such a
step: a spoiled card is made again from the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from issuance.domain.statuses import ProductionStatus

_S = ProductionStatus
PURGEABLE = frozenset(
    {_S.CARD_PROD_DONE, _S.CARD_SHIPPED, _S.DATA_EXCEPTION, _S.CARD_PROD_CANCELED}
)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long sensitive data outlives its use (`ISSUANCE_SENSITIVE_RETENTION_HOURS`)."""

    keep_for: timedelta = timedelta(0)

    def purge_due(self, *, purgeable_since: datetime | None, now: datetime) -> bool:
        """Whether data that became useless at `purgeable_since` must be gone at `now`.

        With the default (0) it goes in the very change that made it useless; with 24 hours,
        an order done at 10:00 on Monday is purged from 10:00 on Tuesday.
        """
        return purgeable_since is not None and now >= purgeable_since + self.keep_for
