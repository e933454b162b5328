"""The delivery retry policy: verdicts per outcome, backoff bounds, Retry-After, the 3-day deadline.

Every random draw comes from a seeded `random.Random`, so a failure replays exactly. Bounds are
worked out from the policy's rule: attempt n waits 5 s * 2^(n-1), capped at 6 h, times a factor
in [0.5, 1.0]; for example attempt 3 waits between 10 s and 20 s.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from issuance.domain.retry import Decision, Outcome, RetryPolicy, Verdict

T0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
POLICY = RetryPolicy()
DEADLINE = T0 + timedelta(days=3)
SAMPLES = 200  # draws per bound check


def _decide(
    outcome: Outcome,
    *,
    attempts: int = 1,
    now: datetime = T0,
    first: datetime = T0,
    rng: random.Random | None = None,
) -> Decision:
    return POLICY.decide(
        outcome,
        attempts=attempts,
        first_attempt_at=first,
        now=now,
        rng=rng or random.Random(7),
    )


def _delay(decision: Decision, now: datetime = T0) -> timedelta:
    assert decision.verdict is Verdict.RETRY, decision
    assert decision.next_attempt_at is not None
    return decision.next_attempt_at - now


TRANSIENT = [
    pytest.param(Outcome(error="ConnectTimeout: timed out"), id="connect-timeout"),
    pytest.param(Outcome(error="ReadTimeout: timed out"), id="read-timeout"),
    pytest.param(Outcome(error="ConnectError: [Errno 111] refused"), id="connection-refused"),
    *(pytest.param(Outcome(status_code=code), id=str(code)) for code in (500, 502, 503, 504)),
    pytest.param(Outcome(status_code=429), id="429"),
    *(pytest.param(Outcome(status_code=code), id=str(code)) for code in (400, 401, 404, 422)),
    pytest.param(Outcome(status_code=301), id="301-redirect-not-followed"),
]


# --- verdicts ---


@pytest.mark.parametrize("code", [200, 201, 202, 204, 299])
def test_a_2xx_is_delivered(code: int) -> None:
    assert _decide(Outcome(status_code=code)) == Decision(Verdict.DELIVERED)


def test_a_410_means_gone_and_no_next_attempt() -> None:
    assert _decide(Outcome(status_code=410)) == Decision(Verdict.GONE)


@pytest.mark.parametrize("outcome", TRANSIENT)
def test_timeouts_connection_errors_5xx_429_and_other_4xx_are_retried(outcome: Outcome) -> None:
    now = T0 + timedelta(minutes=3)
    decision = _decide(outcome, attempts=2, now=now)
    assert decision.verdict is Verdict.RETRY
    assert timedelta(seconds=5) <= _delay(decision, now) <= timedelta(seconds=10)


@pytest.mark.parametrize("code", [200, 204, 410])
def test_a_final_answer_after_the_deadline_still_counts(code: int) -> None:
    decision = _decide(Outcome(status_code=code), attempts=30, now=DEADLINE + timedelta(hours=1))
    assert decision.verdict is (Verdict.GONE if code == 410 else Verdict.DELIVERED)


# --- backoff ---


@pytest.mark.parametrize(
    ("attempts", "base"),
    [
        (1, timedelta(seconds=5)),
        (2, timedelta(seconds=10)),
        (3, timedelta(seconds=20)),
        (4, timedelta(seconds=40)),
        (8, timedelta(seconds=640)),
        (13, timedelta(seconds=20_480)),  # 5.7 h: the last one under the cap
        (14, timedelta(hours=6)),  # 11.4 h, capped
        (25, timedelta(hours=6)),
        (10_000, timedelta(hours=6)),  # no overflow for absurd counts
    ],
)
def test_the_delay_is_the_exponential_base_times_a_jitter_in_half_to_one(
    attempts: int, base: timedelta
) -> None:
    rng = random.Random(20261125)
    delays = [
        _delay(_decide(Outcome(status_code=503), attempts=attempts, rng=rng))
        for _ in range(SAMPLES)
    ]
    assert all(base * 0.5 <= delay <= base for delay in delays)
    assert all(delay <= timedelta(hours=6) for delay in delays)
    # The jitter really spreads the retries over the range: workers do not retry in step.
    assert min(delays) < base * 0.6
    assert max(delays) > base * 0.9


def test_the_delay_never_shrinks_from_one_attempt_to_the_next() -> None:
    """Below the cap, attempt n+1's shortest delay (0.5 * 2b) is attempt n's longest (b)."""
    rng = random.Random(42)
    for _ in range(SAMPLES):
        delays = [
            _delay(_decide(Outcome(status_code=500), attempts=n, rng=rng)) for n in range(1, 30)
        ]
        uncapped = delays[:13]
        assert uncapped == sorted(uncapped)
        assert delays[12] >= timedelta(seconds=10_240)  # about 2^12 times the first
        assert all(timedelta(hours=3) <= d <= timedelta(hours=6) for d in delays[13:])


def test_the_same_seed_gives_the_same_schedule() -> None:
    first = [_decide(Outcome(status_code=500), attempts=n, rng=random.Random(3)) for n in (1, 5)]
    again = [_decide(Outcome(status_code=500), attempts=n, rng=random.Random(3)) for n in (1, 5)]
    assert first == again


# --- Retry-After ---


@pytest.mark.parametrize("code", [429, 503])
@pytest.mark.parametrize(
    ("attempts", "retry_after"),
    [
        (1, timedelta(seconds=120)),  # longer than the 2.5-5 s backoff: honoured
        (1, timedelta(hours=7)),  # longer than the 6 h cap: still honoured
        (10, timedelta(seconds=1)),  # shorter than the backoff: the backoff stands
        (3, timedelta(0)),
    ],
)
def test_retry_after_is_never_undercut(code: int, attempts: int, retry_after: timedelta) -> None:
    rng = random.Random(11)
    base = min(timedelta(seconds=5) * 2 ** (attempts - 1), timedelta(hours=6))
    for _ in range(SAMPLES):
        outcome = Outcome(status_code=code, retry_after=retry_after)
        delay = _delay(_decide(outcome, attempts=attempts, rng=rng))
        assert delay >= retry_after
        assert delay >= base * 0.5
        assert delay <= max(retry_after, base)


def test_retry_after_on_a_500_is_not_a_promise_the_policy_keeps() -> None:
    """The policy honours Retry-After on 429 and 503 only (its docstring); a 500 backs off."""
    outcome = Outcome(status_code=500, retry_after=timedelta(hours=1))
    assert _delay(_decide(outcome, attempts=1)) <= timedelta(seconds=5)


# --- the deadline: 3 days after the first attempt ---


@pytest.mark.parametrize("outcome", TRANSIENT)
@pytest.mark.parametrize(
    "before_deadline",
    [timedelta(hours=5), timedelta(minutes=1), timedelta(seconds=1), timedelta(microseconds=1)],
)
def test_the_last_retry_is_at_the_deadline_never_after(
    outcome: Outcome, before_deadline: timedelta
) -> None:
    now = DEADLINE - before_deadline
    decision = _decide(outcome, attempts=20, now=now)
    assert decision.verdict is Verdict.RETRY
    assert decision.next_attempt_at is not None
    assert now < decision.next_attempt_at <= DEADLINE


@pytest.mark.parametrize("outcome", TRANSIENT)
@pytest.mark.parametrize("after_deadline", [timedelta(0), timedelta(seconds=1), timedelta(days=9)])
def test_at_or_after_the_deadline_the_policy_gives_up(
    outcome: Outcome, after_deadline: timedelta
) -> None:
    decision = _decide(outcome, attempts=25, now=DEADLINE + after_deadline)
    assert decision == Decision(Verdict.GIVE_UP)


def test_the_deadline_counts_from_the_first_attempt_not_the_last() -> None:
    first = T0 - timedelta(days=2, hours=23)
    decision = _decide(Outcome(status_code=500), attempts=20, now=T0, first=first)
    assert decision.next_attempt_at == first + timedelta(days=3)


@pytest.mark.parametrize("code", [429, 503])
def test_a_retry_after_beyond_the_deadline_is_not_undercut(code: int) -> None:
    now = DEADLINE - timedelta(hours=2)
    retry_after = timedelta(hours=4)
    decision = _decide(Outcome(status_code=code, retry_after=retry_after), attempts=20, now=now)
    if decision.verdict is Verdict.RETRY:
        assert decision.next_attempt_at is not None
        assert decision.next_attempt_at >= now + retry_after
    assert decision.next_attempt_at is None or decision.next_attempt_at <= DEADLINE


def test_an_absurd_retry_after_does_not_break_the_policy() -> None:
    outcome = Outcome(status_code=429, retry_after=timedelta(seconds=999_999_999_999))
    decision = _decide(outcome, attempts=1)
    assert decision.next_attempt_at is None or decision.next_attempt_at <= DEADLINE


# --- three days of a receiver that never answers 2xx ---


def _simulate(seed: int) -> list[datetime]:
    """The attempt times against an endpoint answering 500 until the policy gives up."""
    rng = random.Random(seed)
    attempts_at = [T0]
    while True:
        decision = POLICY.decide(
            Outcome(status_code=500),
            attempts=len(attempts_at),
            first_attempt_at=T0,
            now=attempts_at[-1],
            rng=rng,
        )
        if decision.verdict is Verdict.GIVE_UP:
            return attempts_at
        assert decision.verdict is Verdict.RETRY
        assert decision.next_attempt_at is not None
        attempts_at.append(decision.next_attempt_at)
        assert len(attempts_at) < 100, "the policy never gave up"


@pytest.mark.parametrize("seed", range(20))
def test_three_days_of_failures_make_a_sensible_number_of_attempts(seed: int) -> None:
    """All jitters at 1.0 give 25 attempts, all at 0.5 give 37; a real mix lands in between.

    With jitter 1.0: 13 growing delays (5 s … 5.7 h, 11.4 h in all), then 6 h delays up to the
    deadline (10 more), the retry at the deadline itself and the first attempt: 25.
    """
    times = _simulate(seed)
    assert 25 <= len(times) <= 37
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    assert times[-1] == DEADLINE  # the last try is made at the deadline, not given up early
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert max(gaps) <= timedelta(hours=6)
    # 2.5-5 s, 5-10 s, 10-20 s, 20-40 s, then 40-80 s may or may not stay under a minute
    assert sum(gap < timedelta(minutes=1) for gap in gaps) in (4, 5)
