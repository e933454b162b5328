"""Sandbox chaos settings: their bounds, and the draws the worker makes from them.

Every draw comes from a seeded `random.Random`, so the counts below are the same on every run;
the tolerances are wide enough that any seed would pass, narrow enough to catch a wrong rate.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from issuance.domain.chaos import Chaos

DRAWS = 10_000


@pytest.mark.parametrize(
    "chaos",
    [
        {"duplicate": 0.0},
        {"duplicate": 1.0},
        {"duplicate": 0.25},
        {"delay_seconds": 0.0},
        {"delay_seconds": 10.0},
        {"delay_seconds": 0.3},
        {"reorder": True},
        {"duplicate": 1.0, "delay_seconds": 10.0, "reorder": True},
    ],
)
def test_values_within_bounds_are_accepted(chaos: dict[str, Any]) -> None:
    built = Chaos(**chaos)
    assert {name: getattr(built, name) for name in chaos} == chaos


@pytest.mark.parametrize(
    ("chaos", "message"),
    [
        ({"duplicate": -0.01}, "duplicate"),
        ({"duplicate": 1.01}, "duplicate"),
        ({"duplicate": math.nan}, "duplicate"),
        ({"duplicate": math.inf}, "duplicate"),
        ({"delay_seconds": -0.001}, "delay_seconds"),
        ({"delay_seconds": 10.001}, "delay_seconds"),
        ({"delay_seconds": math.nan}, "delay_seconds"),
        ({"delay_seconds": 3600.0}, "delay_seconds"),
    ],
)
def test_values_out_of_bounds_are_refused_naming_the_setting(
    chaos: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Chaos(**chaos)


def test_the_delay_limit_stays_within_the_delivery_lease() -> None:
    assert Chaos.MAX_DELAY_SECONDS == 10.0


@pytest.mark.parametrize(
    ("chaos", "active"),
    [
        (Chaos(), False),
        (Chaos(duplicate=0.0, delay_seconds=0.0, reorder=False), False),
        (Chaos(duplicate=0.01), True),
        (Chaos(delay_seconds=0.01), True),
        (Chaos(reorder=True), True),
    ],
)
def test_active_when_any_setting_is_on(chaos: Chaos, active: bool) -> None:
    assert chaos.active is active


@pytest.mark.parametrize("probability", [0.05, 0.3, 0.5, 0.9])
def test_copies_duplicates_about_the_given_share_of_posts(probability: float) -> None:
    rng = random.Random(f"copies-{probability}")
    chaos = Chaos(duplicate=probability)
    draws = [chaos.copies(rng) for _ in range(DRAWS)]
    assert set(draws) == {1, 2}
    share = draws.count(2) / DRAWS
    assert abs(share - probability) < 0.03, share  # ~10 standard deviations at most


def test_copies_is_always_two_at_certainty_and_one_without_duplicates() -> None:
    rng = random.Random(1)
    assert {Chaos(duplicate=1.0).copies(rng) for _ in range(1000)} == {2}
    assert {Chaos().copies(rng) for _ in range(1000)} == {1}
    assert {Chaos(delay_seconds=5, reorder=True).copies(rng) for _ in range(1000)} == {1}


def test_copies_from_the_same_seed_repeat() -> None:
    chaos = Chaos(duplicate=0.5)
    first, second = random.Random(42), random.Random(42)
    assert [chaos.copies(first) for _ in range(200)] == [chaos.copies(second) for _ in range(200)]


@pytest.mark.parametrize("limit", [0.3, 2.0, 10.0])
def test_delay_is_spread_between_zero_and_the_limit(limit: float) -> None:
    rng = random.Random(f"delay-{limit}")
    delays = [Chaos(delay_seconds=limit).delay(rng) for _ in range(DRAWS)]
    assert all(0.0 <= d <= limit for d in delays)
    assert min(delays) < limit * 0.05  # spread over the whole range, not pinned at the top
    assert max(delays) > limit * 0.95
    assert abs(sum(delays) / DRAWS - limit / 2) < limit * 0.05


def test_no_delay_without_a_delay_setting() -> None:
    rng = random.Random(3)
    assert {Chaos(duplicate=1.0, reorder=True).delay(rng) for _ in range(100)} == {0.0}
