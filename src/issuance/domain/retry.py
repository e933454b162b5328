"""When to try a notification again: exponential backoff with jitter, for about three days.

A pure policy: given how many attempts were made, when the first one was, and what the last one
returned, it answers "again at T", "give up" or "the endpoint is gone". `Retry-After` on a 429
or 503 is honoured (never earlier than it asks, never later than the deadline).

With the defaults, attempt n waits about 5 s * 2^(n-1), capped at 6 hours, each delay scaled by a
random factor in [0.5, 1.0] so a fleet of workers does not retry in step: 5 s, 10 s, 20 s, … 5.7 h,
then every 3 to 6 h until 3 days after the first attempt (25 to 37 attempts, typically 27 to 30).
A `Retry-After` that reaches past the deadline means giving up: the receiver is not ready, and
an earlier retry would go against its word.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

FIRST_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=6)
GIVE_UP_AFTER = timedelta(days=3)  # like Stripe's webhooks
MIN_JITTER = 0.5  # each delay is scaled by a factor in [MIN_JITTER, 1.0]


class Verdict(StrEnum):
    DELIVERED = "DELIVERED"  # 2xx
    RETRY = "RETRY"  # transient: timeout, connection error, 5xx, 429, other 4xx
    GIVE_UP = "GIVE_UP"  # the deadline passed
    GONE = "GONE"  # 410: the endpoint asked us to stop


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt returned: a status code, or an error before any status."""

    status_code: int | None = None
    error: str | None = None
    retry_after: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_delay: timedelta = FIRST_DELAY
    max_delay: timedelta = MAX_DELAY
    give_up_after: timedelta = GIVE_UP_AFTER

    def decide(
        self,
        outcome: Outcome,
        *,
        attempts: int,
        first_attempt_at: datetime,
        now: datetime,
        rng: random.Random | None = None,
    ) -> Decision:
        """`attempts` counts the one that just ended (1 after the first try)."""
        code = outcome.status_code
        if code is not None and 200 <= code < 300:
            return Decision(Verdict.DELIVERED)
        if code == 410:
            return Decision(Verdict.GONE)
        left = first_attempt_at + self.give_up_after - now
        if left <= timedelta(0):
            return Decision(Verdict.GIVE_UP)
        delay = self.delay(attempts, rng or random.Random())  # noqa: S311 (jitter, not secrecy)
        if outcome.retry_after is not None and code in (429, 503):
            if outcome.retry_after > left:  # waiting as asked would pass the deadline
                return Decision(Verdict.GIVE_UP)
            delay = max(delay, outcome.retry_after)
        return Decision(Verdict.RETRY, now + min(delay, left))

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        exponent = min(max(attempts - 1, 0), 32)
        base = min(self.first_delay * (1 << exponent), self.max_delay)
        return base * rng.uniform(MIN_JITTER, 1.0)
