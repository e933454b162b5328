"""When the client tries a call again: a pure policy, so its cases are a table in the tests.

Only what may succeed later is retried: no answer at all (connection refused, timeout), `429`,
`5xx`, and the platform's `409 CONCURRENT_REQUEST`. Any other `4xx` says the request itself is
wrong; sending it again cannot help. Retrying an
order is safe because every retry of one logical call carries the same `issuerRequestId`.

Delays grow exponentially with "full jitter" (a random point below the ceiling), so a fleet of
clients that failed together does not come back together. With the defaults the ceilings are
0.25, 0.5, 1, 2 s: four retries within about 4 s at worst. A `Retry-After` is a floor, never
cut short; one longer than `max_retry_after` ends the retries at once, as waiting that long
inside a call would look like a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from random import random


def is_retriable(status_code: int, error_code: str | None = None) -> bool:
    """429 and every 5xx: the platform or a gateway in front of it is busy or restarting; and
    the one 4xx that asks for it, 409 `CONCURRENT_REQUEST` (our own earlier attempt of the same
    order is still being processed: a retry gets its outcome)."""
    if status_code == 409:
        return error_code == "CONCURRENT_REQUEST"
    return status_code == 429 or status_code >= 500


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds (`"3"`) or as an HTTP date; None when absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many retries, and how long before each one (seconds)."""

    retries: int = 4  # after the first attempt
    base_delay: float = 0.25  # seconds: the ceiling of the first wait
    max_delay: float = 8.0  # seconds: the ceiling never grows beyond this
    max_retry_after: float = 60.0  # seconds: a longer Retry-After is not waited for
    fraction: Callable[[], float] = field(default=random, repr=False)  # uniform in [0, 1)

    def delay(self, retry: int, *, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry number `retry` (0 for the first), or None to give up.

        Example with the defaults: retry 2 waits uniformly within [0, 1) s; with
        `Retry-After: 3` it waits 3 s; with `Retry-After: 120` it gives up.
        """
        if retry >= self.retries:
            return None
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        ceiling = min(self.max_delay, self.base_delay * 2.0**retry)
        jittered = self.fraction() * ceiling
        return max(jittered, retry_after or 0.0)
