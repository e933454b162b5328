"""The endpoint health policy: a failure streak, one warning, then disabling; any 2xx resets it.

Times are exact (no jitter here), so every boundary is checked to the microsecond. A property
test compares the policy with a model written independently: an endpoint is disabled if and only
if some unbroken run of failing batches spans at least `disable_after`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from issuance.domain.endpoint_health import HealthEvent, HealthPolicy, Streak
from issuance.domain.retry import GIVE_UP_AFTER

T0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
WARN = timedelta(hours=12)
DISABLE = timedelta(hours=72)
POLICY = HealthPolicy(warn_after=WARN, disable_after=DISABLE)
TICK = timedelta(microseconds=1)


def _fail(streak: Streak, at: datetime, n: int = 1) -> tuple[Streak, list[HealthEvent]]:
    return POLICY.record(streak, successes=0, failures=n, at=at)


def _succeed(streak: Streak, at: datetime, n: int = 1) -> tuple[Streak, list[HealthEvent]]:
    return POLICY.record(streak, successes=n, failures=0, at=at)


def _run(batches: list[tuple[timedelta, int, int]]) -> tuple[Streak, list[list[HealthEvent]]]:
    """Feed (offset from T0, successes, failures) batches; the last streak and each batch's events."""
    streak, events = Streak(), []
    for offset, successes, failures in batches:
        streak, emitted = POLICY.record(
            streak, successes=successes, failures=failures, at=T0 + offset
        )
        events.append(emitted)
    return streak, events


def test_the_defaults_warn_after_12_hours_and_disable_when_retries_give_up() -> None:
    assert HealthPolicy() == HealthPolicy(warn_after=WARN, disable_after=GIVE_UP_AFTER)
    assert GIVE_UP_AFTER == DISABLE


def test_failures_accumulate_from_the_first_failure() -> None:
    streak, events = _run([(timedelta(0), 0, 3), (timedelta(minutes=5), 0, 2)])
    assert events == [[], []]
    assert streak == Streak(
        consecutive_failures=5,
        failing_since=T0,
        last_failure_at=T0 + timedelta(minutes=5),
    )


@pytest.mark.parametrize("warned", [False, True])
def test_a_success_resets_the_streak_but_keeps_the_last_failure_time(warned: bool) -> None:
    failing = Streak(
        consecutive_failures=7,
        failing_since=T0,
        warned_at=T0 + WARN if warned else None,
        last_success_at=T0 - timedelta(days=1),
        last_failure_at=T0 + timedelta(hours=13),
    )
    at = T0 + timedelta(hours=14)
    streak, events = _succeed(failing, at)
    assert streak == Streak(last_success_at=at, last_failure_at=T0 + timedelta(hours=13))
    assert events == ([HealthEvent.RECOVERED] if warned else [])


def test_one_success_in_a_batch_outweighs_its_failures() -> None:
    warned, _ = _run([(timedelta(0), 0, 1), (WARN, 0, 1)])
    assert warned.warned_at == T0 + WARN
    streak, events = POLICY.record(warned, successes=1, failures=9, at=T0 + WARN + TICK)
    assert events == [HealthEvent.RECOVERED]
    assert (streak.consecutive_failures, streak.failing_since, streak.warned_at) == (0, None, None)


@pytest.mark.parametrize(
    "streak",
    [
        Streak(),
        Streak(last_success_at=T0),
        Streak(consecutive_failures=4, failing_since=T0, last_failure_at=T0 + WARN),
        Streak(consecutive_failures=9, failing_since=T0, warned_at=T0 + WARN),
    ],
)
def test_a_batch_of_nothing_changes_nothing(streak: Streak) -> None:
    far_later = T0 + DISABLE * 10  # would warn and disable, if it counted
    assert POLICY.record(streak, successes=0, failures=0, at=far_later) == (streak, [])


@pytest.mark.parametrize(
    ("second_failure_after", "expected"),
    [
        (timedelta(0), []),
        (WARN - TICK, []),
        (WARN, [HealthEvent.WARNED]),
        (WARN + TICK, [HealthEvent.WARNED]),
        (DISABLE - TICK, [HealthEvent.WARNED]),
        # The first failure after a long silence jumps past both: disabled, never warned.
        (DISABLE, [HealthEvent.DISABLED]),
        (DISABLE + timedelta(days=30), [HealthEvent.DISABLED]),
    ],
)
def test_what_a_failure_at_each_moment_of_a_streak_says(
    second_failure_after: timedelta, expected: list[HealthEvent]
) -> None:
    streak, events = _run([(timedelta(0), 0, 1), (second_failure_after, 0, 1)])
    assert events == [[], expected]
    assert streak.consecutive_failures == 2
    assert streak.failing_since == T0
    at = T0 + second_failure_after
    assert streak.warned_at == (at if expected == [HealthEvent.WARNED] else None)


def test_a_first_failure_never_warns_nor_disables_whatever_came_before() -> None:
    long_quiet = Streak(last_success_at=T0 - timedelta(days=400))
    streak, events = _fail(long_quiet, T0, n=50)
    assert events == []
    assert (streak.consecutive_failures, streak.failing_since) == (50, T0)


def test_it_warns_exactly_once_then_disables_on_every_later_failure() -> None:
    offsets = [timedelta(hours=h) for h in (0, 6, 12, 18, 24, 48, 71)] + [
        DISABLE,
        DISABLE + timedelta(hours=3),
    ]
    streak, events = _run([(offset, 0, 1) for offset in offsets])
    assert events == [
        [],
        [],
        [HealthEvent.WARNED],
        [],
        [],
        [],
        [],
        [HealthEvent.DISABLED],  # the database layer keeps the first reason (idempotent)
        [HealthEvent.DISABLED],
    ]
    assert streak.warned_at == T0 + WARN  # the warning is never repeated nor moved
    assert streak.consecutive_failures == len(offsets)


def test_recovered_only_after_a_warning_and_a_new_streak_warns_again() -> None:
    hours = timedelta(hours=1)
    _, events = _run(
        [
            (0 * hours, 0, 1),
            (6 * hours, 0, 1),
            (7 * hours, 1, 0),  # not warned yet: a quiet recovery
            (8 * hours, 0, 1),
            (20 * hours, 0, 1),  # 12 h of this new streak
            (21 * hours, 2, 0),
            (22 * hours, 1, 0),  # already recovered: nothing more to say
            (23 * hours, 0, 1),
            (35 * hours, 0, 1),  # a fresh streak is warned about again
        ]
    )
    assert events == [
        [],
        [],
        [],
        [],
        [HealthEvent.WARNED],
        [HealthEvent.RECOVERED],
        [],
        [],
        [HealthEvent.WARNED],
    ]


def test_a_custom_policy_uses_its_own_thresholds() -> None:
    policy = HealthPolicy(warn_after=timedelta(minutes=10), disable_after=timedelta(minutes=30))
    streak, _ = policy.record(Streak(), successes=0, failures=1, at=T0)
    streak, warned = policy.record(streak, successes=0, failures=1, at=T0 + timedelta(minutes=10))
    _, disabled = policy.record(streak, successes=0, failures=1, at=T0 + timedelta(minutes=30))
    assert (warned, disabled) == ([HealthEvent.WARNED], [HealthEvent.DISABLED])


# --- the property: an independent model of runs ---


@dataclass(frozen=True)
class Batch:
    gap: timedelta  # since the previous batch
    successes: int
    failures: int


batches = st.lists(
    st.builds(
        Batch,
        gap=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=40)),
        successes=st.integers(0, 2) | st.just(0),
        failures=st.integers(0, 3),
    ),
    max_size=25,
)


@dataclass(frozen=True)
class Expected:
    disabled: bool
    warnings: int
    recoveries: int
    failures_now: int


def _model(items: list[Batch]) -> Expected:
    """Split the timeline into runs of failing batches (batches of nothing do not break a run)."""
    disabled, warnings, recoveries, failures_now = False, 0, 0, 0
    at, run_start, warned = T0, None, False
    for item in items:
        at += item.gap
        if item.successes:
            recoveries += warned
            run_start, warned, failures_now = None, False, 0
        elif item.failures:
            run_start = run_start or at
            failures_now += item.failures
            span = at - run_start
            disabled |= span >= DISABLE
            if WARN <= span < DISABLE and not warned:
                warnings, warned = warnings + 1, True
    return Expected(disabled, warnings, recoveries, failures_now)


@settings(max_examples=300, deadline=None)
@given(batches)
def test_disabled_iff_some_unbroken_failure_run_spans_the_disable_threshold(
    items: list[Batch],
) -> None:
    streak, at, seen = Streak(), T0, []
    for item in items:
        at += item.gap
        streak, events = POLICY.record(
            streak, successes=item.successes, failures=item.failures, at=at
        )
        seen.extend(events)
    expected = _model(items)
    assert (HealthEvent.DISABLED in seen) == expected.disabled
    assert seen.count(HealthEvent.WARNED) == expected.warnings
    assert seen.count(HealthEvent.RECOVERED) == expected.recoveries
    assert streak.consecutive_failures == expected.failures_now
    assert HealthEvent.ENABLED not in seen  # only an operator enables
