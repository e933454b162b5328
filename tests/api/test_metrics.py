"""`/metrics` reports the outbox from the database, in Prometheus text format."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import IssuerClient, new_card_id, order_body


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
