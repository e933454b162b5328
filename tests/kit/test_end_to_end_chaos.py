"""The issuer kit end to end: the real platform, sandbox chaos on, the kit's receiver on loopback.

The platform (the `server` fixture, SQLite) notifies DEMOBANK01's endpoint, pointed at the kit's
receiver served by its own uvicorn; a real `DeliveryWorker` pumps in a thread, with a seeded
random generator. Cards are ordered through the kit's client, each on its own simulator
scenario (set through the sandbox API), and moved to their final states with the sandbox clock
and simulator rounds over HTTP: the first few rounds before the worker starts (a backlog, so its
first claim, and what the seeded chaos does with it, is the same on every run), the rest while it
pumps. Chaos is set through the sandbox API with the issuer's token: duplicate 0.5, delay up to
0.2 s, and reorder or not. Then, once every notification is delivered and handled:

1. the issuer's store holds, for every card, exactly the platform's latest operation;
2. the handler never saw a change twice, and ran once per state the store advanced through
   (without reorder: once per platform event);
3. the chaos was real: the receiver saw repeated webhook-ids and, with reorder, a card's later
   event before its earlier one.

The issuer's store runs on SQLite and PostgreSQL; the platform on SQLite (tests/kit/conftest.py).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.contract.operations import Operation
from issuance.delivery.worker import DeliveryWorker
from issuance.domain.parties import NotificationEndpoint
from issuance.kit import CardChange, CardStore, Receiver, create_receiver_app, schema
from issuance.kit import IssuerClient as KitClient
from issuance.kit.queue import pending
from issuance.kit.rules import content
from issuance.platform import Platform
from issuance.services.configuration import load_config
from tests.conftest import Server
from tests.factories import (
    DEMO,
    ActingIssuerClient,
    advance_clock,
    card_data,
    tick,
)
from tests.integration.test_delivery import deliveries, new_secret
from tests.kit.test_client import CREDENTIALS, FAST, order_fields

SCENARIOS = [
    "SUCCESS",
    "OUT_OF_STOCK",
    "DATA_EXCEPTION",
    "ON_HOLD",
    "RETURNED",
    "CANCELLED",
    "SUCCESS",
    "OUT_OF_STOCK",
    "ON_HOLD",
    "RETURNED",
]
# Where each scenario leaves a card: (operation status, details.status, shipment status).
FINAL = {
    "SUCCESS": ("SUCCESSFUL", "CARD_SHIPPED", "DELIVERED"),
    "OUT_OF_STOCK": ("SUCCESSFUL", "CARD_SHIPPED", "DELIVERED"),
    "DATA_EXCEPTION": ("FAILED", "DATA_EXCEPTION", None),
    "ON_HOLD": ("SUCCESSFUL", "CARD_SHIPPED", "DELIVERED"),
    "RETURNED": ("SUCCESSFUL", "CARD_SHIPPED", "RETURNED"),
    "CANCELLED": ("FAILED", "CARD_PROD_CANCELED", None),
}
# Some card's event n+1 reaches the receiver before its event n with it (asserted below): the
# backlog's first claim is shuffled the same way on every run.
REORDER_SEED = 7
DUPLICATE_SEED = 11
BACKLOG_ROUNDS = 3  # simulator rounds before the worker starts

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Asgi = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


# --- the issuer's side: a handler that records, a wiretap, the receiver's own server ---


def wire(operation: Operation) -> dict[str, Any]:
    return operation.model_dump(by_alias=True, exclude_none=True)


def state(operation: dict[str, Any]) -> tuple[str, str, int | None]:
    return operation["status"], operation["details"]["status"], operation.get("sequence")


@dataclass(frozen=True)
class Call:
    """One handler call: the change it was given, as the issuer's code sees it."""

    change_id: int
    card_id: str
    sequence: int | None
    operation: dict[str, Any]  # wire JSON
    previous: dict[str, Any] | None  # the state this change replaced (wire JSON)


class RecordingHandler:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def __call__(self, change: CardChange) -> None:
        call = Call(
            change_id=change.change_id,
            card_id=change.card_id,
            sequence=change.operation.sequence,
            operation=wire(change.operation),
            previous=None if change.previous is None else wire(change.previous),
        )
        with self._lock:
            self.calls.append(call)

    def by_card(self) -> dict[str, list[Call]]:
        grouped: dict[str, list[Call]] = defaultdict(list)
        for call in self.calls:
            grouped[call.card_id].append(call)
        return dict(grouped)


@dataclass
class Arrival:
    """One POST as it reached the receiver: recorded once its body is in, before it is stored."""

    webhook_id: str
    events: list[tuple[str, int]] = field(default_factory=list)  # (cardId, sequence)
    status: int | None = None


class Wiretap:
    """ASGI middleware in front of the receiver: what arrived, in which order, and the answer."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self.arrivals: list[Arrival] = []

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        arrival = Arrival(headers.get("webhook-id", ""))
        body = bytearray()

        async def tapped_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    payload = httpx.Response(200, content=bytes(body)).json()
                    arrival.events = [
                        (op["cardId"], op["sequence"]) for op in payload["operations"]
                    ]
                    self.arrivals.append(arrival)  # one event loop: no lock needed
            return message

        async def tapped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                arrival.status = message["status"]
            await send(message)

        await self.app(scope, tapped_receive, tapped_send)

    def repeated_webhook_ids(self) -> dict[str, int]:
        counts = Counter(arrival.webhook_id for arrival in self.arrivals)
        return {message: n for message, n in counts.items() if n > 1}

    def first_arrivals(self) -> dict[str, list[int]]:
        """Each card's sequences in the order they first arrived."""
        seen: dict[str, list[int]] = defaultdict(list)
        for arrival in self.arrivals:
            for card_id, sequence in arrival.events:
                if sequence not in seen[card_id]:
                    seen[card_id].append(sequence)
        return dict(seen)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        pass


@dataclass
class Issuer:
    """The issuer backend under test: its store, handler, wiretap and receiver's address."""

    store: CardStore
    handler: RecordingHandler
    wiretap: Wiretap
    url: str


@pytest.fixture
def issuer_store(store_url: str) -> Iterator[CardStore]:
    """The issuer's own database (SQLite file or PostgreSQL), on the real clock."""
    made = CardStore(store_url)
    schema.metadata.drop_all(made.engine)  # PostgreSQL: the tables of the previous test
    made.create_schema()
    yield made
    made.engine.dispose()


@contextmanager
def serving(issuer_store: CardStore, secret: str) -> Iterator[Issuer]:
    """The kit's receiver app (behind the wiretap) on its own uvicorn, on a loopback port."""
    handler = RecordingHandler()
    receiver = Receiver(issuer_store, handler, issuer_ids={DEMO}, secrets=[secret])
    wiretap = Wiretap(create_receiver_app(receiver))
    config = uvicorn.Config(wiretap, host="127.0.0.1", port=0, log_level="warning")
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the issuer's receiver did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Issuer(issuer_store, handler, wiretap, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def pumping(platform: Platform, seed: int) -> Iterator[DeliveryWorker]:
    """A real delivery worker in a thread until the block ends (in-flight POSTs finish first)."""
    worker = DeliveryWorker(platform, identity=f"chaos-{seed}", rng=random.Random(seed))
    stopping = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            worker.run(stopping)
        except BaseException as error:  # surfaced in the test, not lost in the thread
            failures.append(error)

    thread = threading.Thread(target=run, name="delivery", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stopping.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the delivery worker did not stop"
    assert not failures, failures


# --- the platform's side, over HTTP ---


def order_with_scenarios(server: Server, http: httpx.Client) -> dict[str, str]:
    """Each scenario on its own card (set before ordering), ordered through the kit's client.

    Card ids are fixed (each test has a fresh platform database), so that the order in which
    the platform records their events, and so what a seeded worker does with them, is too."""
    acting = ActingIssuerClient(http)
    cards = {f"card-chaos-{n:02d}": scenario for n, scenario in enumerate(SCENARIOS)}
    with KitClient(server.base_url, DEMO, CREDENTIALS, retry=FAST) as d1:
        for card_id, scenario in cards.items():
            assert acting.set_scenario(card_id, scenario).status_code == 200
            placed = d1.order_card(card_id, order_fields(), card_data=card_data())
            assert not placed.replayed
    return cards


def simulate(server: Server, http: httpx.Client, *, rounds: int = 40) -> int:
    """Advance the sandbox clock one simulator step and run a round, `rounds` times or until
    a round moves nothing; how many rounds moved something."""
    headers = ActingIssuerClient(http).headers
    step = server.platform.settings.simulator_step_seconds
    for done in range(rounds):
        advance_clock(http, step, headers=headers)
        if tick(http, headers=headers) == 0:
            return done
    return rounds


def wait_until_delivered(server: Server, http: httpx.Client, issuer: Issuer) -> None:
    """Every delivery acknowledged, and every stored change handed to the handler."""
    headers = ActingIssuerClient(http).headers
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = deliveries(server.platform.engine)
        if rows and all(row.status == "DELIVERED" for row in rows):
            break
        assert {row.status for row in rows} <= {"PENDING", "DELIVERED"}, rows
        if any(row.attempts for row in rows if row.status == "PENDING"):
            advance_clock(http, 60, headers=headers)  # a retry waits for its backoff: skip it
        time.sleep(0.05)
    else:
        raise AssertionError(f"not all delivered: {deliveries(server.platform.engine)}")
    while pending(issuer.store) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pending(issuer.store) == 0, "the handler has changes still waiting"


def platform_state(server: Server, cards: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each card's latest operation as productionStatus answers it, through the kit's client."""
    with KitClient(server.base_url, DEMO, CREDENTIALS, retry=FAST) as d1:
        return {card_id: wire(d1.production_status(card_id)[-1]) for card_id in cards}


def changes_stored(store: CardStore) -> dict[str, int]:
    """How many real changes the store queued per card: the states it advanced through."""
    query = select(schema.changes.c.card_id, func.count()).group_by(schema.changes.c.card_id)
    with store.engine.connect() as connection:
        return {card_id: int(count) for card_id, count in connection.execute(query).all()}


# --- the scenario, and what must hold after it ---


@dataclass
class Outcome:
    cards: dict[str, str]  # card id → scenario
    platform: dict[str, dict[str, Any]]  # card id → latest operation (wire JSON)
    issuer: Issuer
    rounds: int


def point_demobank_at(platform: Platform, base_url: str, secret: str) -> None:
    """DEMOBANK01's one endpoint `main` at `base_url`, signing with `secret`, 3 events a POST."""
    sandbox = read_config(SANDBOX_CONFIG)
    demo = sandbox.issuers[0]
    assert demo.issuer_id == DEMO
    endpoint = NotificationEndpoint(
        endpoint_id="main",
        base_url=base_url,
        max_operations_per_call=3,
        signing_secrets=(secret,),
        timeout_seconds=2.0,
    )
    issuers = (
        demo.model_copy(update={"notification_endpoints": (endpoint,)}),
        *sandbox.issuers[1:],
    )
    load_config(sandbox.model_copy(update={"issuers": issuers}), uow=platform.uow())


def run_with_chaos(
    server: Server, http: httpx.Client, issuer_store: CardStore, chaos: dict[str, Any], seed: int
) -> Outcome:
    secret = new_secret()
    with serving(issuer_store, secret) as issuer:
        point_demobank_at(server.platform, issuer.url, secret)
        answer = http.put(
            f"/sandbox/v1/issuers/{DEMO}/endpoints/main/chaos",
            json=chaos,
            headers=ActingIssuerClient(http).headers,
        )
        assert (answer.status_code, answer.json()) == (200, chaos), answer.text
        # A backlog first: the worker starts once each card has a few events waiting, so its
        # first claim (and what the seeded chaos does with it) is the same on every run.
        cards = order_with_scenarios(server, http)
        rounds = simulate(server, http, rounds=BACKLOG_ROUNDS)
        assert rounds == BACKLOG_ROUNDS
        with pumping(server.platform, seed):
            wait_until_delivered(server, http, issuer)
            backlog = len(issuer.wiretap.arrivals)
            # Then live: the cards move on while notifications are on their way.
            rounds += simulate(server, http)
            wait_until_delivered(server, http, issuer)
        assert len(issuer.wiretap.arrivals) > backlog
        return Outcome(cards, platform_state(server, cards), issuer, rounds)


def assert_store_equals_platform(outcome: Outcome) -> None:
    """(1) Each card's stored operation is the platform's latest, field for field."""
    for card_id, scenario in outcome.cards.items():
        latest = outcome.platform[card_id]
        shipment = latest["details"].get("shipment", {}).get("status")
        assert (*state(latest)[:2], shipment) == FINAL[scenario], (scenario, latest)
        stored = [wire(op) for op in outcome.issuer.store.operations(DEMO, card_id)]
        assert [state(op) for op in stored] == [state(latest)], (scenario, card_id)
        assert stored == [latest], (scenario, card_id)


def assert_handled_once_per_change(outcome: Outcome) -> dict[str, list[Call]]:
    """(2) No change_id twice; per card, one call per state the store advanced through, each a
    real change from the one before, in order, ending at the platform's state."""
    calls = outcome.issuer.handler.calls
    change_ids = [call.change_id for call in calls]
    assert len(change_ids) == len(set(change_ids)), Counter(change_ids).most_common(3)
    by_card = outcome.issuer.handler.by_card()
    assert by_card.keys() == outcome.cards.keys()
    advanced = changes_stored(outcome.issuer.store)
    for card_id, made in by_card.items():
        assert len(made) == advanced[card_id], card_id
        sequences = [call.sequence for call in made]
        numbered = {s for s in sequences if s is not None}
        assert sequences == sorted(numbered), (card_id, sequences)  # only ever forward
        assert made[0].previous is None
        for before, after in itertools.pairwise(made):
            assert after.previous is not None
            assert content(after.previous) == content(before.operation)
            assert content(after.operation) != content(before.operation)  # a real change
        assert made[-1].operation == outcome.platform[card_id]
    return by_card


def assert_all_delivered_and_duplicated(outcome: Outcome) -> dict[str, int]:
    """(3a) Every event reached the receiver, every POST was accepted, some came twice."""
    arrivals = outcome.issuer.wiretap.arrivals
    assert {arrival.status for arrival in arrivals} == {204}
    received = {event for arrival in arrivals for event in arrival.events}
    assert received == {
        (card_id, n)
        for card_id, latest in outcome.platform.items()
        for n in range(1, latest["sequence"] + 1)
    }
    repeated = outcome.issuer.wiretap.repeated_webhook_ids()
    assert repeated, "chaos sent no POST twice"
    return repeated


def test_duplicates_delay_and_reorder_leave_the_store_equal_to_the_platform(
    server: Server, http: httpx.Client, issuer_store: CardStore
) -> None:
    chaos = {"duplicate": 0.5, "delaySeconds": 0.2, "reorder": True}
    outcome = run_with_chaos(server, http, issuer_store, chaos, REORDER_SEED)

    assert_store_equals_platform(outcome)
    by_card = assert_handled_once_per_change(outcome)
    assert_all_delivered_and_duplicated(outcome)

    first = outcome.issuer.wiretap.first_arrivals()
    overtaken = {card_id for card_id, order in first.items() if order != sorted(order)}
    assert overtaken, f"seed {REORDER_SEED} reordered no card's events: {first}"
    # An event overtaken by a later one is stale when it comes: the handler never sees it.
    # (Asked of some overtaken card, not of each: two requests stored concurrently may be
    # stored in the other order than they arrived in.)
    skipped = {c for c in overtaken if len(by_card[c]) < outcome.platform[c]["sequence"]}
    assert skipped, (first, {c: [call.sequence for call in by_card[c]] for c in overtaken})


def test_duplicates_and_delay_in_order_run_the_handler_once_per_platform_event(
    server: Server, http: httpx.Client, issuer_store: CardStore
) -> None:
    chaos = {"duplicate": 0.5, "delaySeconds": 0.2, "reorder": False}
    outcome = run_with_chaos(server, http, issuer_store, chaos, DUPLICATE_SEED)

    assert_store_equals_platform(outcome)
    by_card = assert_handled_once_per_change(outcome)
    assert_all_delivered_and_duplicated(outcome)

    first = outcome.issuer.wiretap.first_arrivals()
    for card_id, latest in outcome.platform.items():
        events = list(range(1, latest["sequence"] + 1))
        assert first[card_id] == events, card_id  # per-card order held
        assert [call.sequence for call in by_card[card_id]] == events, card_id
