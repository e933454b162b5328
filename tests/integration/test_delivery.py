"""Notification delivery end to end: outbox rows → worker → a real HTTP receiver on loopback.

Orders are placed over HTTP (the `server` fixture), moved with `workflow.perform`, and their
events fanned out to DEMOBANK01's one endpoint, which points at a `tests.receiver.Receiver`.
The test drives `DeliveryWorker.run_once()` itself with a clock it holds, so "not before the
retry is due" is checked to the microsecond and nothing depends on sleeping. Every test runs on
SQLite and PostgreSQL; the two-worker race runs on PostgreSQL only.
"""

from __future__ import annotations

import base64
import random
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from standardwebhooks import Webhook

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.models import DeliveryAttemptRow, DeliveryRow
from issuance.db.outbox import (
    DeliveryStatus,
    Settlement,
    claim,
    disabled_endpoints,
    enable_endpoint,
    settle,
)
from issuance.delivery.worker import DeliveryWorker
from issuance.domain.parties import NotificationEndpoint
from issuance.domain.retry import Decision, Outcome, Verdict
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.services.workflow import Action, perform
from tests.conftest import Server
from tests.factories import DEMO, IssuerClient, journal, new_card_id, order_body
from tests.receiver import Received, Receiver, Reply

NOTIFY_PATH = f"/notifications/d1/v2/issuers/{DEMO}/cards"
RETRY_STEP = timedelta(minutes=1)  # beyond any of the first four backoff delays (≤ 40 s)


class Clock:
    """The worker's time: starts at the real now, moves only when the test says so."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)  # deliveries are due from their commit's wall-clock time

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass(frozen=True)
class Endpoint:
    config: NotificationEndpoint
    secret: str


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def point_demobank_at(
    platform: Platform, base_url: str, *, per_call: int = 10, timeout: float = 1.0
) -> Endpoint:
    """Replace DEMOBANK01's notification endpoints with one at `base_url`; load the config."""
    sandbox = read_config(SANDBOX_CONFIG)
    demo = sandbox.issuers[0]
    assert demo.issuer_id == DEMO
    secret = new_secret()
    endpoint = NotificationEndpoint(
        endpoint_id="main",
        base_url=base_url,
        max_operations_per_call=per_call,
        signing_secrets=(secret,),
        timeout_seconds=timeout,
    )
    issuers = (
        demo.model_copy(update={"notification_endpoints": (endpoint,)}),
        *sandbox.issuers[1:],
    )
    load_config(sandbox.model_copy(update={"issuers": issuers}), uow=platform.uow())
    return Endpoint(endpoint, secret)


def order_cards(
    http: httpx.Client, platform: Platform, count: int, *, moves: Sequence[Action] = ()
) -> list[str]:
    """Order `count` DEMOBANK01 cards over HTTP, then apply `moves` to each: 1 + len(moves) events."""
    issuer = IssuerClient(http)
    cards = [new_card_id() for _ in range(count)]
    for card_id in cards:
        answer = issuer.order(card_id, order_body(issuer.encrypt()))
        assert answer.status_code == 202, answer.text
        for action in moves:
            perform(
                action, issuer_id=DEMO, card_id=card_id, uow=platform.uow(), clock=platform.clock
            )
    return cards


@dataclass(frozen=True)
class Delivery:
    delivery_id: int
    card_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    first_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _maybe_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


def deliveries(engine: Engine) -> list[Delivery]:
    with engine.connect() as connection:
        rows = connection.execute(select(DeliveryRow).order_by(DeliveryRow.delivery_id)).all()
    return [
        Delivery(
            delivery_id=row.delivery_id,
            card_id=row.card_id,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=_utc(row.next_attempt_at),
            first_attempt_at=_maybe_utc(row.first_attempt_at),
            delivered_at=_maybe_utc(row.delivered_at),
            last_status_code=row.last_status_code,
            last_error=row.last_error,
        )
        for row in rows
    ]


def the_delivery(engine: Engine) -> Delivery:
    [delivery] = deliveries(engine)
    return delivery


def attempts(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(DeliveryAttemptRow).order_by(DeliveryAttemptRow.attempt_id)
        ).all()
    return [dict(row._mapping) for row in rows]


def keys(requests: list[Received]) -> list[tuple[str, int]]:
    """(cardId, sequence) of every operation received, in arrival order."""
    return [(op["cardId"], op["sequence"]) for r in requests for op in r.operations]


def assert_per_card_order(requests: list[Received]) -> None:
    """No request carries sequence n+1 of a card before a 2xx acknowledged its sequence n."""
    acknowledged: dict[str, int] = {}
    for request in requests:
        for card_id, sequence in keys([request]):
            assert sequence == acknowledged.get(card_id, 0) + 1, (card_id, sequence, acknowledged)
        if 200 <= request.status < 300:
            for card_id, sequence in keys([request]):
                acknowledged[card_id] = sequence


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as listening:
        yield listening


def worker(platform: Platform, clock: Clock, name: str = "w1") -> DeliveryWorker:
    return DeliveryWorker(platform, clock=clock, identity=name, rng=random.Random(name))


def drain(delivery: DeliveryWorker, clock: Clock, *, rounds: int = 30) -> int:
    """Run rounds, moving the clock a minute when nothing is due, until all is settled."""
    total = 0
    for _ in range(rounds):
        done = delivery.run_once()
        total += done
        if done == 0:
            if all(
                d.status != DeliveryStatus.PENDING for d in deliveries(delivery.platform.engine)
            ):
                return total
            clock.advance(RETRY_STEP)
    raise AssertionError(
        f"still pending after {rounds} rounds: {deliveries(delivery.platform.engine)}"
    )


# --- the normal case ---


def test_each_event_arrives_once_signed_with_its_operation(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    endpoint = point_demobank_at(platform, receiver.url)
    cards = order_cards(http, platform, 3, moves=[Action.PREPARE, Action.QUEUE])
    clock = Clock()
    delivery = worker(platform, clock)

    # Per-card order: each round may only take the next event of each card.
    assert [delivery.run_once() for _ in range(4)] == [3, 3, 3, 0]

    requests = receiver.received
    assert len(requests) == 3
    expected = {(card_id, n) for card_id in cards for n in (1, 2, 3)}
    assert Counter(keys(requests)) == Counter(expected)  # each event exactly once
    for request in requests:
        assert request.path == NOTIFY_PATH
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-correlation-id"] == request.headers["webhook-id"]
        assert Webhook(endpoint.secret).verify(request.body, request.headers) == {
            "operations": request.operations
        }
    journalled = {
        (card_id, entry.sequence): entry.payload
        for card_id in cards
        for entry in journal(platform.engine, card_id)
    }
    assert set(journalled) == expected
    for operation in receiver.operations():
        assert operation == journalled[(operation["cardId"], operation["sequence"])]
    assert {d.status for d in deliveries(platform.engine)} == {DeliveryStatus.DELIVERED}
    assert {d.attempts for d in deliveries(platform.engine)} == {1}
    assert all(d.delivered_at == clock.now for d in deliveries(platform.engine))


def test_a_card_never_gets_sequence_n_plus_1_before_n(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url, per_call=3)
    cards = order_cards(http, platform, 4, moves=[Action.PREPARE, Action.QUEUE, Action.HOLD])
    receiver.answer(500, 204, 503, 204, 429, 500, 204)
    clock = Clock()

    drain(worker(platform, clock), clock)

    requests = receiver.received
    assert [r.status for r in requests][:7] == [500, 204, 503, 204, 429, 500, 204]
    assert_per_card_order(requests)
    delivered = [key for r in requests if 200 <= r.status < 300 for key in keys([r])]
    assert Counter(delivered) == Counter((c, n) for c in cards for n in (1, 2, 3, 4))


def test_operations_are_batched_up_to_the_endpoint_limit(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url, per_call=2)
    cards = order_cards(http, platform, 5)
    clock = Clock()

    assert worker(platform, clock).run_once() == 5

    requests = receiver.received
    assert sorted(len(r.operations) for r in requests) == [1, 2, 2]  # sent concurrently
    assert sorted(card for card, _ in keys(requests)) == sorted(cards)
    assert len({r.headers["webhook-id"] for r in requests}) == 3


# --- failures and retries ---


def test_a_500_is_retried_when_due_not_before(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    [card_id] = order_cards(http, platform, 1)
    receiver.answer(500)
    clock = Clock()
    delivery = worker(platform, clock)
    started = clock.now

    assert delivery.run_once() == 1
    pending = the_delivery(platform.engine)
    assert (pending.status, pending.attempts, pending.last_status_code) == ("PENDING", 1, 500)
    assert pending.first_attempt_at == started
    # attempt 1 failed: the next one 2.5-5 s later (5 s times a jitter in [0.5, 1])
    assert started + timedelta(seconds=2.5) <= pending.next_attempt_at
    assert pending.next_attempt_at <= started + timedelta(seconds=5)

    assert delivery.run_once() == 0
    clock.now = pending.next_attempt_at - timedelta(microseconds=1)
    assert delivery.run_once() == 0
    assert len(receiver.received) == 1

    clock.now = pending.next_attempt_at
    assert delivery.run_once() == 1
    done = the_delivery(platform.engine)
    assert (done.status, done.attempts, done.last_status_code) == ("DELIVERED", 2, 204)
    assert done.first_attempt_at == started
    assert done.delivered_at == pending.next_attempt_at
    first, second = receiver.received
    assert first.operations == second.operations
    assert first.operations[0]["cardId"] == card_id
    assert [(a["status_code"], a["error"]) for a in attempts(platform.engine)] == [
        (500, None),
        (204, None),
    ]


def test_a_receiver_down_then_up_gets_the_notification(server: Server, http: httpx.Client) -> None:
    platform = server.platform
    down = Receiver()  # the port is bound but nobody listens: connections are refused
    try:
        endpoint = point_demobank_at(platform, down.url)
        order_cards(http, platform, 1)
        clock = Clock()
        delivery = worker(platform, clock)

        assert delivery.run_once() == 1
        pending = the_delivery(platform.engine)
        assert pending.status == DeliveryStatus.PENDING
        assert pending.last_status_code is None
        assert pending.last_error is not None
        assert pending.last_error.startswith("ConnectError")

        down.start()
        assert delivery.run_once() == 0  # up now, but the retry is not due yet
        clock.now = pending.next_attempt_at
        assert delivery.run_once() == 1
    finally:
        down.stop()

    assert the_delivery(platform.engine).status == DeliveryStatus.DELIVERED
    [request] = down.received
    assert Webhook(endpoint.secret).verify(request.body, request.headers)
    [refused, accepted] = attempts(platform.engine)
    assert refused["status_code"] is None
    assert refused["error"].startswith("ConnectError")
    assert (accepted["status_code"], accepted["error"]) == (204, None)


def test_a_receiver_slower_than_the_timeout_is_retried(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url, timeout=0.3)
    order_cards(http, platform, 1)
    receiver.answer(Reply(status=204, delay=0.8))  # answers, but too late
    clock = Clock()
    delivery = worker(platform, clock)

    assert delivery.run_once() == 1
    pending = the_delivery(platform.engine)
    assert pending.status == DeliveryStatus.PENDING
    assert pending.last_error is not None
    assert pending.last_error.startswith("Timeout: no response within")

    clock.now = pending.next_attempt_at
    assert delivery.run_once() == 1
    assert the_delivery(platform.engine).status == DeliveryStatus.DELIVERED
    slow, fast = receiver.received
    assert slow.operations == fast.operations
    timed_out, answered = attempts(platform.engine)
    assert timed_out["status_code"] is None
    assert 250 <= timed_out["latency_ms"] < 800  # gave up at the 0.3 s timeout, not at 0.8 s
    assert answered["status_code"] == 204


def test_a_429_retry_after_is_honoured(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    receiver.answer(Reply(status=429, headers={"Retry-After": "120"}))
    clock = Clock()
    delivery = worker(platform, clock)
    started = clock.now

    assert delivery.run_once() == 1
    assert the_delivery(platform.engine).next_attempt_at == started + timedelta(seconds=120)
    for wait in (timedelta(seconds=5), timedelta(seconds=119), timedelta(seconds=119.999)):
        clock.now = started + wait
        assert delivery.run_once() == 0
    assert len(receiver.received) == 1

    clock.now = started + timedelta(seconds=120)
    assert delivery.run_once() == 1
    assert the_delivery(platform.engine).status == DeliveryStatus.DELIVERED
    assert [r.status for r in receiver.received] == [429, 204]


def test_a_410_marks_the_delivery_gone_and_it_is_never_tried_again(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    receiver.answer(410)
    clock = Clock()
    delivery = worker(platform, clock)

    assert delivery.run_once() == 1
    gone = the_delivery(platform.engine)
    assert (gone.status, gone.attempts, gone.last_status_code) == ("GONE", 1, 410)
    assert gone.delivered_at is None
    assert gone.first_attempt_at is not None
    for later in (timedelta(minutes=1), timedelta(hours=7), timedelta(days=4)):
        clock.now = gone.first_attempt_at + later
        assert delivery.run_once() == 0
    assert len(receiver.received) == 1
    assert len(attempts(platform.engine)) == 1


def test_the_attempt_log_has_code_latency_and_error_never_the_body(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url, timeout=0.3)
    [card_id] = order_cards(http, platform, 1)
    receiver.answer(503, Reply(status=204, delay=0.6), 204)
    clock = Clock()

    drain(worker(platform, clock), clock)

    assert {c.name for c in DeliveryAttemptRow.__table__.columns} == {
        "attempt_id",
        "delivery_id",
        "attempted_at",
        "latency_ms",
        "status_code",
        "error",
    }
    log = attempts(platform.engine)
    [delivery] = deliveries(platform.engine)
    assert [a["delivery_id"] for a in log] == [delivery.delivery_id] * 3
    assert [a["status_code"] for a in log] == [503, None, 204]
    assert [a["error"] is None for a in log] == [True, False, True]
    assert log[1]["error"].startswith("Timeout: no response within")
    assert all(a["latency_ms"] > 0 for a in log)
    assert log[1]["latency_ms"] >= 250
    times = [_utc(a["attempted_at"]) for a in log]
    assert times == sorted(times)
    operation = receiver.received[0].operations[0]
    logged = repr(log)
    for secret_or_body in (operation["operationId"], card_id, receiver.received[0].body.decode()):
        assert secret_or_body not in logged


def test_an_endpoint_that_opts_out_of_per_card_order_gets_a_cards_events_at_once(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    endpoint = point_demobank_at(platform, receiver.url, per_call=1)
    config = read_config(SANDBOX_CONFIG)
    unordered = endpoint.config.model_copy(update={"per_card_order": False})
    demo = config.issuers[0].model_copy(update={"notification_endpoints": (unordered,)})
    load_config(
        config.model_copy(update={"issuers": (demo, *config.issuers[1:])}), uow=platform.uow()
    )
    cards = order_cards(http, platform, 2, moves=[Action.PREPARE, Action.QUEUE])
    clock = Clock()

    assert worker(platform, clock).run_once() == 6  # every event of both cards in one round
    assert Counter(keys(receiver.received)) == Counter((c, n) for c in cards for n in (1, 2, 3))
    assert by_card(platform.engine) == {card: ["DELIVERED"] * 3 for card in cards}


# --- workers that die, workers that race ---


def test_a_claim_left_by_a_dead_worker_is_sent_again_after_the_lease(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    lease = timedelta(seconds=platform.settings.delivery_lease_seconds)
    assert lease == timedelta(seconds=60)  # the default the worker uses
    clock = Clock()
    started = clock.now
    [taken] = claim(platform.engine, worker_id="dead", now=started, lease=lease, limit=200)
    alive = worker(platform, clock, name="alive")

    for wait in (timedelta(0), timedelta(seconds=30), lease - timedelta(milliseconds=1)):
        clock.now = started + wait
        assert alive.run_once() == 0
    assert receiver.received == []

    clock.now = started + lease + timedelta(milliseconds=1)
    assert alive.run_once() == 1
    assert the_delivery(platform.engine).status == DeliveryStatus.DELIVERED
    assert len(receiver.received) == 1

    # The dead worker wakes up and settles its stale claim: the delivery stays delivered.
    settle(
        platform.engine,
        [
            Settlement(
                claim=taken,
                outcome=Outcome(error="ReadTimeout: late"),
                decision=Decision(Verdict.RETRY, clock.now + timedelta(seconds=5)),
                attempted_at=started,
                latency_ms=1.0,
            )
        ],
        worker_id="dead",
    )
    after = the_delivery(platform.engine)
    assert (after.status, after.attempts, after.last_status_code) == ("DELIVERED", 1, 204)
    clock.advance(timedelta(minutes=5))
    assert alive.run_once() == 0


def test_two_workers_at_once_deliver_every_event_exactly_once_in_order(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: two concurrent claimers need PostgreSQL")
    point_demobank_at(platform, receiver.url, per_call=2)
    cards = order_cards(http, platform, 6, moves=[Action.PREPARE, Action.QUEUE])
    receiver.answer(*[Reply(status=204, delay=0.005)] * 18)
    clock = Clock()
    start = threading.Barrier(2)
    failures: list[BaseException] = []
    rounds: Counter[str] = Counter()

    def run(name: str) -> None:
        try:
            if True:
                delivery = worker(platform, clock, name=name)
                start.wait(timeout=10)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    if delivery.run_once():
                        rounds[name] += 1
                    elif all(
                        d.status == DeliveryStatus.DELIVERED for d in deliveries(platform.engine)
                    ):
                        return
        except BaseException as error:  # reported by the test thread below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    requests = receiver.received
    assert Counter(keys(requests)) == Counter((c, n) for c in cards for n in (1, 2, 3))
    assert_per_card_order(requests)
    assert {(d.status, d.attempts) for d in deliveries(platform.engine)} == {("DELIVERED", 1)}
    assert len(attempts(platform.engine)) == 18


# --- bugs, pinned ---


def test_a_round_that_outlives_its_lease_sends_nothing_stale(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url, per_call=1, timeout=10)
    first, second = order_cards(http, platform, 2, moves=[Action.PREPARE])
    slow = threading.Event()
    receiver.answer(Reply(status=204, hold=slow))  # w1's first POST waits for the test
    clock = Clock()
    lease = timedelta(seconds=platform.settings.delivery_lease_seconds)
    if True:
        w1 = worker(platform, clock, name="w1")
        w2 = worker(platform, clock, name="w2")
        stuck = threading.Thread(target=w1.run_once)  # claims both cards' sequence 1
        stuck.start()
        try:
            deadline = time.monotonic() + 10
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.005)
            clock.advance(lease + timedelta(seconds=1))  # w1's lease is over, its POST is not
            while w2.run_once():
                pass
            assert {(d.status, d.attempts) for d in deliveries(platform.engine)} == {
                ("DELIVERED", 1)
            }
        finally:
            slow.set()
            stuck.join(timeout=15)

    received = keys(receiver.received)
    for card_id in (first, second):
        sequences = [n for card, n in received if card == card_id]
        assert sequences == sorted(sequences), (card_id, received)


def test_a_retry_of_the_same_notification_keeps_its_webhook_id(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    receiver.answer(500)
    clock = Clock()
    drain(worker(platform, clock), clock)
    first, retried = receiver.received
    assert first.body == retried.body
    assert first.headers["webhook-id"] == retried.headers["webhook-id"]


def test_an_absurd_retry_after_does_not_wedge_the_worker(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 1)
    receiver.answer(Reply(status=429, headers={"Retry-After": "999999999999"}))
    clock = Clock()
    assert worker(platform, clock).run_once() == 1
    pending = the_delivery(platform.engine)
    assert pending.attempts == 1
    assert len(attempts(platform.engine)) == 1


def by_card(engine: Engine) -> dict[str, list[str]]:
    """Each card's delivery states, in sequence order."""
    states: dict[str, list[str]] = defaultdict(list)
    for delivery in deliveries(engine):
        states[delivery.card_id].append(delivery.status)
    return dict(states)


def test_a_410_stops_the_whole_endpoint_until_it_is_enabled_again(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url, per_call=1)
    cards = order_cards(http, platform, 2, moves=[Action.PREPARE])
    receiver.answer(410, 410)
    clock = Clock()
    delivery = worker(platform, clock)

    assert delivery.run_once() == 2  # sequence 1 of both cards, sent together: both 410
    assert disabled_endpoints(platform.engine)[0][:2] == (DEMO, "main")
    clock.advance(timedelta(hours=1))
    assert delivery.run_once() == 0  # sequence 2 waits: nothing is sent to a disabled endpoint
    assert len(receiver.received) == 2
    assert by_card(platform.engine) == {card_id: ["GONE", "PENDING"] for card_id in cards}

    assert enable_endpoint(platform.engine, issuer_id=DEMO, endpoint_id="main")
    drain(delivery, clock)
    assert by_card(platform.engine) == {card_id: ["GONE", "DELIVERED"] for card_id in cards}
    assert not enable_endpoint(platform.engine, issuer_id=DEMO, endpoint_id="main")


def test_claims_and_settlements_run_on_the_loop_on_postgresql_on_a_thread_on_sqlite(
    server: Server, http: httpx.Client, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database thread shares the GIL with the POSTs' loop (bench/worker_path.py): on
    PostgreSQL the worker claims and settles on the loop itself, over psycopg's async driver."""
    import issuance.delivery.worker as worker_module

    platform = server.platform
    point_demobank_at(platform, receiver.url)
    order_cards(http, platform, 2)
    seen: list[tuple[str, str, bool]] = []

    def watched(name: str, real: Any) -> Any:
        def call(engine: Engine, *args: Any, **kwargs: Any) -> Any:
            seen.append((name, threading.current_thread().name, engine.dialect.is_async))
            return real(engine, *args, **kwargs)

        return call

    monkeypatch.setattr(worker_module, "claim", watched("claim", claim))
    monkeypatch.setattr(worker_module, "settle", watched("settle", settle))
    assert worker(platform, Clock()).run_once() == 2

    on_postgresql = platform.engine.dialect.name == "postgresql"
    assert {name for name, _, _ in seen} == {"claim", "settle"}
    for _, thread, is_async in seen:
        assert is_async is on_postgresql
        assert (thread == threading.current_thread().name) is on_postgresql
        assert thread.startswith("delivery-db") is not on_postgresql
    assert {d.status for d in deliveries(platform.engine)} == {DeliveryStatus.DELIVERED}
