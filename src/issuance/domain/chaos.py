"""Sandbox chaos: what the spec warns receivers about, on purpose, per endpoint.

D1 notifications may arrive twice, late, and out of order. An issuer proves its receiver
tolerates that by turning chaos on for its sandbox endpoint: each POST may be sent twice
(`duplicate` is the probability), held back up to `delay_seconds`, and with `reorder` the events
of a card travel concurrently and shuffled, so sequence n+1 may arrive before n. Nothing is lost:
every event is still delivered until acknowledged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chaos:
    duplicate: float = 0.0  # probability of a POST being sent a second time
    delay_seconds: float = 0.0  # each POST waits a random time up to this
    reorder: bool = False

    MAX_DELAY_SECONDS = 10.0  # well within the delivery lease

    def __post_init__(self) -> None:
        if not 0.0 <= self.duplicate <= 1.0:
            raise ValueError("duplicate is a probability, from 0 to 1")
        if not 0.0 <= self.delay_seconds <= self.MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds runs from 0 to {self.MAX_DELAY_SECONDS:g}")

    @property
    def active(self) -> bool:
        return bool(self.duplicate or self.delay_seconds or self.reorder)

    def delay(self, rng: random.Random) -> float:
        return rng.uniform(0, self.delay_seconds) if self.delay_seconds else 0.0

    def copies(self, rng: random.Random) -> int:
        """How many times to send the next POST: 1, or 2 when chaos duplicates it."""
        return 2 if self.duplicate and rng.random() < self.duplicate else 1
