"""Endpoint health end to end: a real worker, a real loopback receiver, a clock the test holds.

A receiver that keeps failing is retried as the retry policy says; the test jumps the clock to
each retry as it falls due, so days of failure take a few dozen rounds. What operators see is
read back from the database (`endpoint_events`, `streaks`, `disabled_endpoints`) and from the
warning logged when it happens. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy.orm import Session
from structlog.testing import LogCapture

from issuance.db import endpoint_health as health_db
from issuance.db.delivery_log import attempts_of
from issuance.db.endpoint_health import EndpointEvent, endpoint_events, streaks
from issuance.db.outbox import (
    Claim,
    DeliveryStatus,
    Settlement,
    claim,
    disabled_endpoints,
    enable_endpoint,
    settle,
)
from issuance.delivery.worker import DeliveryWorker
from issuance.domain.endpoint_health import HealthPolicy, Streak
from issuance.domain.retry import Decision, Outcome, Verdict
from issuance.platform import Platform
from issuance.services.workflow import Action
from tests.conftest import Server
from tests.factories import DEMO, OPERATOR, token_headers
from tests.integration.test_delivery import (
    Clock,
    deliveries,
    drain,
    order_cards,
    point_demobank_at,
    worker,
)
from tests.receiver import Receiver

WARN = timedelta(hours=12)  # the settings' defaults
DISABLE = timedelta(hours=72)
MAIN = (DEMO, "main")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as listening:
        yield listening


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> LogCapture:
    """What endpoint health logs. Loggers are cached on first use, so the module's own logger is
    swapped for one that records (`structlog.testing.capture_logs` cannot reach a cached one)."""
    capture = LogCapture()
    monkeypatch.setattr(health_db, "log", structlog.wrap_logger(None, processors=[capture]))
    return capture


def events(platform: Platform) -> list[EndpointEvent]:
    """Every endpoint event, oldest first."""
    return list(reversed(endpoint_events(platform.engine)))


def kinds(platform: Platform) -> list[str]:
    return [event.kind for event in events(platform)]


def health_logs(capture: LogCapture) -> list[MutableMapping[str, Any]]:
    return [e for e in capture.entries if str(e["event"]).startswith("notification endpoint")]


def next_due(platform: Platform) -> datetime | None:
    pending = [d.next_attempt_at for d in deliveries(platform.engine) if d.status == "PENDING"]
    return min(pending, default=None)


def attempt_when_due(
    delivery: DeliveryWorker, clock: Clock, receiver: Receiver, status: int
) -> datetime:
    """Move the clock to the next retry (never back), have the receiver answer `status`, run a
    round that must POST once; the attempt's time."""
    due = next_due(delivery.platform)
    assert due is not None, "nothing left to attempt"
    clock.now = max(clock.now, due)
    receiver.answer(status)
    posted = len(receiver.received)
    assert delivery.run_once() >= 1
    assert len(receiver.received) == posted + 1
    return clock.now


def with_thresholds(platform: Platform, *, warn_hours: float, disable_hours: float) -> Platform:
    """The same platform (engine, keys, clock), its settings with other health thresholds."""
    settings = platform.settings.model_copy(
        update={
            "endpoint_warn_after_hours": warn_hours,
            "endpoint_disable_after_hours": disable_hours,
        }
    )
    return dataclasses.replace(platform, settings=settings)


def test_failing_for_12_hours_warns_once_72_hours_disables_and_enabling_resumes(
    server: Server, http: httpx.Client, receiver: Receiver, logged: LogCapture
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    clock = Clock()
    delivery = worker(platform, clock)
    started = clock.now

    # 500 until just before 12 h of failure: retried as due, nothing to tell operators yet.
    attempts: list[datetime] = []
    while not attempts or attempts[-1] - started < WARN:
        assert events(platform) == []
        attempts.append(attempt_when_due(delivery, clock, receiver, 500))
    warned_at = attempts[-1]
    [warned] = events(platform)
    assert (warned.issuer_id, warned.endpoint_id, warned.kind, warned.at) == (
        DEMO,
        "main",
        "WARNED",
        warned_at,
    )
    assert f"failing since {started.isoformat()}" in warned.detail
    [warning] = health_logs(logged)
    assert warning["event"] == "notification endpoint warned"
    assert (warning["log_level"], warning["issuer_id"], warning["endpoint"]) == (
        "warning",
        DEMO,
        "main",
    )
    streak = streaks(platform.engine)[MAIN]
    assert (streak.consecutive_failures, streak.failing_since, streak.warned_at) == (
        len(attempts),
        started,
        warned_at,
    )
    assert disabled_endpoints(platform.engine) == []

    # 500 until the retries give up, 72 h after the first attempt: the endpoint is disabled then.
    while next_due(platform) is not None:
        assert kinds(platform) == ["WARNED"]  # warned once, whatever the failures after
        attempts.append(attempt_when_due(delivery, clock, receiver, 500))
    assert attempts[-1] == started + DISABLE
    assert [d.status for d in deliveries(platform.engine)] == [DeliveryStatus.FAILED]
    assert kinds(platform) == ["WARNED", "DISABLED"]
    disabled = events(platform)[-1]
    assert disabled.at == started + DISABLE
    [(issuer_id, endpoint_id, since, reason)] = disabled_endpoints(platform.engine)
    assert (issuer_id, endpoint_id, since) == (DEMO, "main", started + DISABLE)
    assert reason.startswith(f"failing since {started.isoformat()}")
    assert disabled.detail == reason
    assert [e["event"] for e in health_logs(logged)] == [
        "notification endpoint warned",
        "notification endpoint disabled",
    ]
    assert streaks(platform.engine)[MAIN].consecutive_failures == len(attempts)

    # Disabled: a new card's notification waits, however long, and nothing is POSTed.
    order_cards(http, platform, 1)
    posted = len(receiver.received)
    for _ in range(3):
        clock.advance(timedelta(hours=7))
        assert delivery.run_once() == 0
    assert len(receiver.received) == posted
    assert [d.status for d in deliveries(platform.engine)] == ["FAILED", "PENDING"]

    # Enabled again: an ENABLED event, the streak starts over, the notification goes out.
    assert enable_endpoint(platform.engine, issuer_id=DEMO, endpoint_id="main", at=clock.now)
    assert kinds(platform) == ["WARNED", "DISABLED", "ENABLED"]
    assert events(platform)[-1].at == clock.now
    assert disabled_endpoints(platform.engine) == []
    reset = streaks(platform.engine)[MAIN]
    assert (reset.consecutive_failures, reset.failing_since, reset.warned_at) == (0, None, None)
    assert reset.last_failure_at == started + DISABLE

    assert delivery.run_once() == 1
    assert len(receiver.received) == posted + 1
    assert receiver.received[-1].status == 204
    assert [d.status for d in deliveries(platform.engine)] == ["FAILED", "DELIVERED"]
    # A 2xx on a streak the operator already reset is no recovery to report.
    assert kinds(platform) == ["WARNED", "DISABLED", "ENABLED"]
    assert streaks(platform.engine)[MAIN].last_success_at == clock.now


def test_a_2xx_after_a_warning_is_a_recovery_and_resets_the_streak(
    server: Server, http: httpx.Client, receiver: Receiver, logged: LogCapture
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    clock = Clock()
    delivery = worker(platform, clock)
    started = clock.now

    failed_at = started
    while kinds(platform) != ["WARNED"]:
        failed_at = attempt_when_due(delivery, clock, receiver, 500)
    assert failed_at - started >= WARN

    recovered_at = attempt_when_due(delivery, clock, receiver, 204)
    assert kinds(platform) == ["WARNED", "RECOVERED"]
    assert events(platform)[-1].at == recovered_at
    assert [e["event"] for e in health_logs(logged)] == [
        "notification endpoint warned",
        "notification endpoint recovered",
    ]
    assert streaks(platform.engine)[MAIN] == Streak(
        consecutive_failures=0,
        failing_since=None,
        warned_at=None,
        last_success_at=recovered_at,
        last_failure_at=failed_at,
    )
    assert [d.status for d in deliveries(platform.engine)] == [DeliveryStatus.DELIVERED]
    assert disabled_endpoints(platform.engine) == []


def test_a_flaky_receiver_is_never_warned_about(
    server: Server, http: httpx.Client, receiver: Receiver, logged: LogCapture
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    cards = order_cards(http, platform, 2, moves=[Action.PREPARE, Action.QUEUE, Action.HOLD])
    clock = Clock()
    delivery = worker(platform, clock)
    started = clock.now

    # Each round sends sequence n of both cards in one POST: 500, then 204 on its retry, ...
    for _ in range(4):
        receiver.answer(500)
        assert delivery.run_once() == len(cards)
        clock.advance(timedelta(hours=2, minutes=30))
        receiver.answer(204)
        assert delivery.run_once() == len(cards)
        clock.advance(timedelta(hours=2, minutes=30))

    assert [r.status for r in receiver.received] == [500, 204] * 4
    # The failures span 15 h, more than the 12 h that warn: only the 2xx between them save it.
    assert clock.now - started >= WARN + timedelta(hours=5)
    assert {d.status for d in deliveries(platform.engine)} == {DeliveryStatus.DELIVERED}
    assert events(platform) == []
    assert health_logs(logged) == []
    streak = streaks(platform.engine)[MAIN]
    assert (streak.consecutive_failures, streak.failing_since, streak.warned_at) == (0, None, None)
    assert streak.last_success_at == started + timedelta(hours=17, minutes=30)
    assert streak.last_failure_at == started + timedelta(hours=15)


def test_the_worker_takes_its_thresholds_from_the_settings(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = with_thresholds(server.platform, warn_hours=0.5, disable_hours=2)
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    clock = Clock()
    delivery = worker(platform, clock)
    started = clock.now

    moments = []
    while not disabled_endpoints(platform.engine):
        moments.append(attempt_when_due(delivery, clock, receiver, 500))
    [warned, disabled] = events(platform)
    assert warned.kind == "WARNED"
    assert warned.at == min(m for m in moments if m - started >= timedelta(minutes=30))
    assert (disabled.kind, disabled.at) == ("DISABLED", moments[-1])
    assert timedelta(hours=2) <= moments[-1] - started < timedelta(hours=6)
    assert "disabled after 2:00:00" in disabled.detail

    # The delivery itself is still within its 3-day retry window, but nothing more is sent.
    [held] = deliveries(platform.engine)
    assert held.status == DeliveryStatus.PENDING
    posted = len(receiver.received)
    for _ in range(3):
        clock.now = max(clock.now, held.next_attempt_at) + timedelta(hours=1)
        assert delivery.run_once() == 0
    assert len(receiver.received) == posted

    assert enable_endpoint(platform.engine, issuer_id=DEMO, endpoint_id="main", at=clock.now)
    drain(delivery, clock)
    assert [d.status for d in deliveries(platform.engine)] == [DeliveryStatus.DELIVERED]
    assert len(receiver.received) == posted + 1
    assert kinds(platform) == ["WARNED", "DISABLED", "ENABLED"]


def test_a_410_disables_at_once_without_counting_as_a_failure(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    clock = Clock()
    receiver.answer(410)

    assert worker(platform, clock).run_once() == 1

    [gone] = events(platform)
    assert (gone.kind, gone.at) == ("DISABLED", clock.now)
    assert gone.detail.startswith("410 Gone answered for event")
    [(_, _, _, reason)] = disabled_endpoints(platform.engine)
    assert reason == gone.detail
    assert streaks(platform.engine)[MAIN].consecutive_failures == 0


# --- bugs, pinned ---


def test_a_stale_settlement_does_not_count_in_the_streak(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    clock = Clock()
    started = clock.now
    lease = timedelta(seconds=platform.settings.delivery_lease_seconds)
    [taken] = claim(platform.engine, worker_id="dead", now=started, lease=lease, limit=10)
    clock.now = started + lease + timedelta(seconds=1)
    assert worker(platform, clock, name="alive").run_once() == 1  # delivered: 204

    late = Settlement(
        claim=taken,
        outcome=Outcome(error="ReadTimeout: late"),
        decision=Decision(Verdict.RETRY, clock.now + timedelta(seconds=5)),
        attempted_at=started,
        latency_ms=1.0,
    )
    settle(platform.engine, [late], worker_id="dead")

    assert [d.status for d in deliveries(platform.engine)] == [DeliveryStatus.DELIVERED]
    streak = streaks(platform.engine)[MAIN]
    assert (streak.consecutive_failures, streak.failing_since) == (0, None)


def test_a_batch_with_a_lost_claim_settles_only_the_held_ones(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    """Settling tries the UPDATE first and checks it moved every row; one lost claim in the
    batch sends it down the careful path: the held delivery settles, the lost one stays the
    other worker's, both attempts are logged, and only the held one counts in the streak."""
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 2)
    started = datetime.now(UTC)
    lease = timedelta(seconds=platform.settings.delivery_lease_seconds)
    [lost] = claim(platform.engine, worker_id="slow", now=started, lease=lease, limit=1)
    later = started + lease + timedelta(seconds=1)
    # the lost claim is due again from its lease's end, after the card never claimed
    [held] = claim(platform.engine, worker_id="slow", now=later, lease=lease, limit=1)
    [taken_over] = claim(platform.engine, worker_id="other", now=later, lease=lease, limit=1)
    assert taken_over.delivery_id == lost.delivery_id != held.delivery_id

    def failed(item: Claim) -> Settlement:
        return Settlement(
            claim=item,
            outcome=Outcome(status_code=500),
            decision=Decision(Verdict.RETRY, later + timedelta(seconds=5)),
            attempted_at=later,
            latency_ms=1.0,
        )

    settle(platform.engine, [failed(lost), failed(held)], worker_id="slow")

    by_id = {d.delivery_id: d for d in deliveries(platform.engine)}
    assert (by_id[held.delivery_id].attempts, by_id[held.delivery_id].last_status_code) == (1, 500)
    assert (by_id[lost.delivery_id].attempts, by_id[lost.delivery_id].last_status_code) == (0, None)
    logged = attempts_of(platform.engine, by_id)
    assert [len(logged[lost.delivery_id]), len(logged[held.delivery_id])] == [1, 1]
    assert streaks(platform.engine)[MAIN].consecutive_failures == 1


def test_enabled_is_stamped_with_the_platform_clock(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    operator = token_headers(http, *OPERATOR)
    advanced = http.post("/sandbox/v1/clock:advance", json={"seconds": 86400}, headers=operator)
    assert advanced.status_code == 200, advanced.text
    receiver.answer(410)
    assert DeliveryWorker(platform, identity="w1").run_once() == 1  # the platform's clock
    assert kinds(platform) == ["DISABLED"]

    answer = http.post(f"/operator/v1/issuers/{DEMO}/endpoints/main:enable", headers=operator)
    assert answer.status_code == 200, answer.text

    disabled, enabled = events(platform)
    assert enabled.kind == "ENABLED"
    assert enabled.at >= disabled.at


def test_two_workers_settling_a_new_endpoint_at_once_both_commit(server: Server) -> None:
    """The first settlement of an endpoint creates its health row; two workers' first
    settlements at once used to both add it, and the second's whole settlement failed on the
    duplicate key (its deliveries then went out again after their lease). Likewise two 410s."""
    platform = server.platform
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: the second waits before it reads anything")
    endpoint = ("DEMOBANK01", f"race-{datetime.now(UTC).timestamp()}")
    at = datetime.now(UTC)
    policy = HealthPolicy()
    errors: list[BaseException] = []

    def first_settlement_of_second_worker() -> None:
        try:
            with Session(platform.engine) as session, session.begin():
                health_db.record_attempts(session, {endpoint: (1, 0)}, at=at, policy=policy)
                health_db.disable(session, *endpoint, at=at, reason="410 Gone (second)")
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    with Session(platform.engine) as first, first.begin():
        health_db.record_attempts(first, {endpoint: (1, 0)}, at=at, policy=policy)
        health_db.disable(first, *endpoint, at=at, reason="410 Gone (first)")
        second = threading.Thread(target=first_settlement_of_second_worker)
        second.start()
        second.join(timeout=0.5)
        assert second.is_alive()  # waiting on the first's uncommitted rows
    second.join(timeout=10)

    assert errors == []
    assert streaks(platform.engine)[endpoint].last_success_at == at
    assert [(i, e, why) for i, e, _, why in disabled_endpoints(platform.engine)] == [
        (*endpoint, "410 Gone (first)")
    ]
    disabled = [e for e in events(platform) if (e.issuer_id, e.endpoint_id) == endpoint]
    assert [e.kind for e in disabled] == ["DISABLED"]
