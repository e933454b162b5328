"""Sandbox chaos over real HTTP: the API that sets it, and what a real worker then does.

Chaos is set with the issuer's own token (`PUT /sandbox/v1/issuers/{id}/endpoints/{id}/chaos`);
the worker (run by the test, with a clock it holds and a seeded random generator) then
duplicates, delays or reorders POSTs to a loopback receiver. Tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from issuance.db.sandbox import SqlChaosStore
from issuance.delivery.worker import DeliveryWorker
from issuance.domain.chaos import Chaos
from issuance.platform import Platform
from issuance.services.workflow import Action
from tests.conftest import Server
from tests.factories import (
    DEMO,
    OPERATOR,
    OTHER,
    IssuerClient,
    expect_refused,
    token_headers,
)
from tests.integration.test_delivery import (
    Clock,
    attempts,
    deliveries,
    drain,
    keys,
    order_cards,
    point_demobank_at,
)
from tests.receiver import Received, Receiver

NONE = {"duplicate": 0.0, "delaySeconds": 0.0, "reorder": False}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as listening:
        yield listening


def chaos_path(issuer_id: str = DEMO, endpoint_id: str = "main") -> str:
    return f"/sandbox/v1/issuers/{issuer_id}/endpoints/{endpoint_id}/chaos"


def put_chaos(
    issuer: IssuerClient, body: dict[str, Any], *, issuer_id: str = DEMO, endpoint_id: str = "main"
) -> httpx.Response:
    return issuer.http.put(chaos_path(issuer_id, endpoint_id), json=body, headers=issuer.headers)


def get_chaos(
    issuer: IssuerClient, *, issuer_id: str = DEMO, endpoint_id: str = "main"
) -> httpx.Response:
    return issuer.http.get(chaos_path(issuer_id, endpoint_id), headers=issuer.headers)


def set_chaos(http: httpx.Client, **body: Any) -> None:
    answer = put_chaos(IssuerClient(http), body)
    assert answer.status_code == 200, answer.text


def stored(platform: Platform) -> dict[tuple[str, str], Chaos]:
    return SqlChaosStore(platform.engine).all()


def chaos_worker(
    platform: Platform, clock: Clock, seed: int | str, **options: Any
) -> DeliveryWorker:
    return DeliveryWorker(
        platform, clock=clock, identity="chaos", rng=random.Random(seed), **options
    )


# --- the API ---


def test_get_returns_what_put_set_and_all_zero_removes_it(
    server: Server, http: httpx.Client
) -> None:
    issuer = IssuerClient(http)
    assert get_chaos(issuer).json() == NONE  # none set yet

    chosen = {"duplicate": 0.25, "delaySeconds": 1.5, "reorder": True}
    answer = put_chaos(issuer, chosen)
    assert (answer.status_code, answer.json()) == (200, chosen)
    assert get_chaos(issuer).json() == chosen
    assert stored(server.platform) == {(DEMO, "main"): Chaos(0.25, 1.5, True)}

    # A PUT replaces the whole setting: what it leaves out is off.
    answer = put_chaos(issuer, {"reorder": True})
    assert (answer.status_code, answer.json()) == (200, {**NONE, "reorder": True})
    assert get_chaos(issuer).json() == {**NONE, "reorder": True}

    edges = {"duplicate": 1.0, "delaySeconds": 10.0, "reorder": False}
    assert put_chaos(issuer, edges).json() == edges
    assert get_chaos(issuer).json() == edges

    answer = put_chaos(issuer, NONE)
    assert (answer.status_code, answer.json()) == (200, NONE)
    assert stored(server.platform) == {}
    assert get_chaos(issuer).json() == NONE
    assert put_chaos(issuer, {}).status_code == 200  # nothing to remove: still fine
    assert stored(server.platform) == {}


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"duplicate": -0.01}, "duplicate", "FIELD_INVALID_FORMAT"),
    ({"duplicate": 1.01}, "duplicate", "FIELD_INVALID_FORMAT"),
    ({"duplicate": "often"}, "duplicate", "FIELD_INVALID_FORMAT"),
    ({"delaySeconds": -0.5}, "delaySeconds", "FIELD_INVALID_FORMAT"),
    ({"delaySeconds": 10.01}, "delaySeconds", "FIELD_INVALID_FORMAT"),
    ({"delaySeconds": 3600}, "delaySeconds", "FIELD_INVALID_FORMAT"),
    ({"reorder": "sometimes"}, "reorder", "FIELD_INVALID_FORMAT"),
    ({"reorder": True, "lose": 0.5}, "lose", "FIELD_UNKNOWN"),
]


def test_each_bound_is_refused_naming_the_field(server: Server, http: httpx.Client) -> None:
    """One server for every case (each would cost a database and a server of its own)."""
    issuer = IssuerClient(http)
    put_chaos(issuer, {"duplicate": 0.5})
    for body, field, code in REFUSED:
        refused = put_chaos(issuer, {"duplicate": 0.0, **body})
        expect_refused(refused, 400, code)
        assert refused.json()["field"] == field, body
        assert field in refused.json()["error"], body
    # Not even JSON numbers, but Python's parser reads them: refused all the same, not a 500.
    for raw, field in [("NaN", "duplicate"), ("Infinity", "delaySeconds")]:
        refused = http.put(
            chaos_path(),
            content=f'{{"{field}": {raw}}}',
            headers={**issuer.headers, "content-type": "application/json"},
        )
        assert (refused.status_code, refused.json().get("field")) == (400, field), refused.text
    assert stored(server.platform) == {(DEMO, "main"): Chaos(duplicate=0.5)}  # left as it was


def test_only_the_issuers_own_token_and_only_configured_endpoints(
    server: Server, http: httpx.Client
) -> None:
    demo, other = IssuerClient(http), IssuerClient(http, OTHER)
    operator = token_headers(http, *OPERATOR)

    for answer in (
        put_chaos(other, {"duplicate": 1}),
        get_chaos(other),
        http.put(chaos_path(), json={"duplicate": 1}, headers=operator),
    ):
        expect_refused(answer, 403, "ISSUER_MISMATCH")
    assert http.put(chaos_path(), json={"duplicate": 1}).status_code == 401

    for answer in (
        put_chaos(demo, {"duplicate": 1}, endpoint_id="nowhere"),
        get_chaos(demo, endpoint_id="nowhere"),
        put_chaos(other, {"duplicate": 1}, issuer_id=OTHER, endpoint_id="main"),
    ):
        expect_refused(answer, 404, "ENDPOINT_NOT_FOUND")
        assert answer.json()["field"] == "endpointId"
    assert stored(server.platform) == {}

    assert put_chaos(demo, {"duplicate": 1}).status_code == 200
    assert stored(server.platform) == {(DEMO, "main"): Chaos(duplicate=1.0)}


# --- what the worker does with it ---


def by_webhook_id(requests: list[Received]) -> dict[str, list[Received]]:
    grouped: dict[str, list[Received]] = defaultdict(list)
    for request in requests:
        grouped[request.headers["webhook-id"]].append(request)
    return dict(grouped)


def test_duplicate_1_sends_every_post_twice_and_each_delivery_is_attempted_once(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    endpoint = point_demobank_at(platform, receiver.url, per_call=1)
    cards = order_cards(http, platform, 3)
    set_chaos(http, duplicate=1)
    clock = Clock()
    delivery = chaos_worker(platform, clock, seed=1)

    assert delivery.run_once() == 3
    requests = receiver.received
    assert len(requests) == 6
    copies = by_webhook_id(requests)
    assert len(copies) == 3
    for first, second in copies.values():
        assert first.body == second.body
        assert first.status == second.status == 204
        for request in (first, second):
            assert Webhook(endpoint.secret).verify(request.body, request.headers)
    assert Counter(keys(requests)) == Counter({(card, 1): 2 for card in cards})
    assert [(d.status, d.attempts) for d in deliveries(platform.engine)] == [("DELIVERED", 1)] * 3
    assert len(attempts(platform.engine)) == 3  # a duplicate is not a second attempt

    drain(delivery, clock)
    assert len(receiver.received) == 6


def test_chaos_is_ignored_outside_the_sandbox(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url, per_call=1)
    order_cards(http, platform, 2, moves=[Action.PREPARE])
    set_chaos(http, duplicate=1, reorder=True)
    production = dataclasses.replace(
        platform, settings=platform.settings.model_copy(update={"sandbox": False})
    )
    clock = Clock()

    assert chaos_worker(production, clock, seed=1).run_once() == 2  # per-card order holds
    assert len(receiver.received) == 2  # and nothing is sent twice


REORDER_SEED = 3  # shuffles some card's sequence 2 ahead of its sequence 1 (checked below)


def test_reorder_claims_a_cards_events_together_and_shuffles_them(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url, per_call=1)
    cards = order_cards(http, platform, 3, moves=[Action.PREPARE, Action.QUEUE])
    set_chaos(http, reorder=True)
    clock = Clock()
    # One POST at a time, so the receiver sees them in the order the worker sends them.
    delivery = chaos_worker(platform, clock, seed=REORDER_SEED, concurrency=1)

    assert delivery.run_once() == 9  # all three events of each card in the first round
    requests = receiver.received
    assert len(requests) == 9 > len(cards)
    assert all(len(r.operations) == 1 for r in requests)
    arrived = keys(requests)
    assert Counter(arrived) == Counter((card, n) for card in cards for n in (1, 2, 3))
    inversions = [
        (card, n)
        for card in cards
        for n in (1, 2)
        if arrived.index((card, n + 1)) < arrived.index((card, n))
    ]
    assert inversions, f"seed {REORDER_SEED} kept every card in order: {arrived}"
    assert {(d.status, d.attempts) for d in deliveries(platform.engine)} == {("DELIVERED", 1)}

    # The same seed gives the same order: the chaos is reproducible.
    again = Receiver()
    with again:
        point_demobank_at(platform, again.url, per_call=1)
        cards_again = order_cards(http, platform, 3, moves=[Action.PREPARE, Action.QUEUE])
        assert chaos_worker(platform, Clock(), seed=REORDER_SEED, concurrency=1).run_once() == 9
    rename = dict(zip(cards_again, cards, strict=True))
    assert [(rename[card], n) for card, n in keys(again.received)] == arrived


def test_reorder_with_failures_still_delivers_every_event(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url, per_call=1)
    cards = order_cards(http, platform, 3, moves=[Action.PREPARE, Action.QUEUE])
    set_chaos(http, reorder=True, duplicate=0.5)
    receiver.answer(500, 204, 503, 500, 204, 429)
    clock = Clock()

    drain(chaos_worker(platform, clock, seed="failures"), clock)

    delivered = {key for r in receiver.received if r.status == 204 for key in keys([r])}
    assert delivered == {(card, n) for card in cards for n in (1, 2, 3)}
    assert {d.status for d in deliveries(platform.engine)} == {"DELIVERED"}


def test_a_delay_holds_posts_back_and_still_delivers_everything(
    server: Server, http: httpx.Client, receiver: Receiver
) -> None:
    platform = server.platform
    point_demobank_at(platform, receiver.url, per_call=1)
    cards = order_cards(http, platform, 6)
    clock = Clock()
    set_chaos(http, delaySeconds=0.3)
    delivery = chaos_worker(platform, clock, seed="delay")

    started = time.monotonic()
    assert delivery.run_once() == 6
    elapsed = time.monotonic() - started

    # Six draws up to 0.3 s, slept concurrently: the round lasts at least the longest of them.
    assert elapsed >= 0.1, elapsed
    assert Counter(keys(receiver.received)) == Counter((card, 1) for card in cards)
    assert [(d.status, d.attempts) for d in deliveries(platform.engine)] == [("DELIVERED", 1)] * 6
