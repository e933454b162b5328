"""The client's retry policy and `Retry-After` reading, as tables."""

from __future__ import annotations

import pytest

from issuance.kit import RetryPolicy
from issuance.kit.retry import is_retriable, parse_retry_after

POLICY = RetryPolicy(retries=3, base_delay=1.0, max_delay=3.0, fraction=lambda: 0.5)


@pytest.mark.parametrize(
    ("retry", "retry_after", "delay"),
    [
        (0, None, 0.5),  # half of the 1 s ceiling
        (1, None, 1.0),  # half of 2 s
        (2, None, 1.5),  # half of min(4, 3) s
        (3, None, None),  # out of retries
        (0, 10.0, 10.0),  # Retry-After is a floor
        (0, 0.1, 0.5),
        (0, 61.0, None),  # longer than max_retry_after: give up
    ],
)
def test_retry_policy(retry: int, retry_after: float | None, delay: float | None) -> None:
    assert POLICY.delay(retry, retry_after=retry_after) == delay


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-1", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: now
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize(
    ("status", "retriable"),
    [
        (429, True),
        (500, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (404, False),
        (409, False),
        (422, False),
    ],
)
def test_only_429_and_5xx_are_retriable(status: int, retriable: bool) -> None:
    assert is_retriable(status) is retriable


@pytest.mark.parametrize(
    ("error_code", "retriable"),
    [
        ("CONCURRENT_REQUEST", True),
        ("ORDER_IN_PROGRESS", False),
        ("REQUEST_ID_REUSED", False),
        (None, False),
    ],
)
def test_of_the_409s_only_a_concurrent_request_is_retried(
    error_code: str | None, retriable: bool
) -> None:
    assert is_retriable(409, error_code) is retriable
