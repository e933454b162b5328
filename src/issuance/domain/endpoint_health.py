"""When an endpoint that keeps failing is warned about, then disabled.

A pure policy over a streak: the first failure after a success starts it, any 2xx ends it. Only
total failure counts: one acknowledged POST in a round resets the streak, so a flaky receiver is
retried (per delivery, see retry.py), never disabled. After `warn_after` of unbroken failure the
operators are warned once; after `disable_after` the endpoint is disabled (nothing more is sent
until someone enables it), by default when the first of its notifications would be given up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from issuance.domain.retry import GIVE_UP_AFTER


class HealthEvent(StrEnum):
    WARNED = "WARNED"  # failing for `warn_after`: disabled at `disable_after` unless it recovers
    DISABLED = "DISABLED"  # failing for `disable_after`, or answered 410
    RECOVERED = "RECOVERED"  # a 2xx after a warning
    ENABLED = "ENABLED"  # an operator resumed delivery


@dataclass(frozen=True, slots=True)
class Streak:
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    warned_at: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    warn_after: timedelta = timedelta(hours=12)
    disable_after: timedelta = GIVE_UP_AFTER

    def record(
        self, streak: Streak, *, successes: int, failures: int, at: datetime
    ) -> tuple[Streak, list[HealthEvent]]:
        """The streak after a batch of attempts to the endpoint, and what to tell operators."""
        if successes:
            events = [HealthEvent.RECOVERED] if streak.warned_at else []
            return Streak(last_success_at=at, last_failure_at=streak.last_failure_at), events
        if not failures:
            return streak, []
        since = streak.failing_since or at
        streak = replace(
            streak,
            consecutive_failures=streak.consecutive_failures + failures,
            failing_since=since,
            last_failure_at=at,
        )
        if at - since >= self.disable_after:
            return streak, [HealthEvent.DISABLED]
        if at - since >= self.warn_after and streak.warned_at is None:
            return replace(streak, warned_at=at), [HealthEvent.WARNED]
        return streak, []
