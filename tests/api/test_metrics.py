"""`/metrics` reports the outbox from the database, in Prometheus text format."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from issuance.delivery.worker import DeliveryWorker
from tests.conftest import Server
from tests.factories import IssuerClient, new_card_id, order_body
from tests.integration.test_delivery import order_cards, point_demobank_at
from tests.receiver import Receiver


def _samples(http: httpx.Client) -> dict[tuple[str, str], float]:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, sample.labels.get("status", "")): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_pending_deliveries_and_their_age_are_reported(http: httpx.Client) -> None:
    before = _samples(http)
    assert before[("issuance_deliveries", "pending")] == 0
    assert before[("issuance_oldest_undelivered_age_seconds", "")] == 0

    issuer = IssuerClient(http)
    for _ in range(3):  # the sandbox's DEMOBANK01 has one endpoint: one delivery per event
        assert issuer.order(new_card_id(), order_body(issuer.encrypt())).status_code == 202
    http.post("/sandbox/v1/clock:advance", json={"seconds": 90}, headers=issuer.headers)

    after = _samples(http)
    assert after[("issuance_deliveries", "pending")] == 3
    assert after[("issuance_deliveries", "delivered")] == 0
    assert after[("issuance_deliveries_in_flight", "")] == 0
    assert after[("issuance_oldest_undelivered_age_seconds", "")] >= 90


def test_delivery_latency_is_a_histogram_of_the_delivering_process(
    server: Server, http: httpx.Client
) -> None:
    def counts() -> dict[str, float]:
        families = text_string_to_metric_families(http.get("/metrics").text)
        return {
            sample.name + str(sorted(sample.labels.items())): sample.value
            for family in families
            for sample in family.samples
        }

    with Receiver() as receiver:
        point_demobank_at(server.platform, receiver.url)
        order_cards(http, server.platform, 2)
        before = counts()
        assert DeliveryWorker(server.platform).run_once() == 2

    after = counts()
    posts = "issuance_delivery_post_seconds_count[]"
    lag = "issuance_delivery_lag_seconds_count[]"
    delivered = "issuance_delivery_attempts_total[('verdict', 'delivered')]"
    assert after[posts] - before.get(posts, 0) == 1  # both operations in one POST
    assert after[lag] - before.get(lag, 0) == 2  # one lag per state change
    assert after[delivered] - before.get(delivered, 0) == 2
    assert after["issuance_delivery_post_seconds_bucket[('le', '+Inf')]"] == after[posts]


def test_single_card_orders_are_counted_with_the_groups_that_placed_them(
    http: httpx.Client,
) -> None:
    def grouped() -> tuple[float, float]:
        samples = _samples(http)
        return samples[("issuance_order_groups_total", "")], samples[
            ("issuance_grouped_orders_total", "")
        ]

    groups, orders = grouped()
    issuer = IssuerClient(http)
    for _ in range(3):  # one after the other: each commits in a group of its own
        assert issuer.order(new_card_id(), order_body(issuer.encrypt())).status_code == 202

    assert grouped() == (groups + 3, orders + 3)
