"""Idempotency on issuerRequestId, sequentially and under real concurrency, on both databases."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from issuance.db.models import EventRow, OrderRow
from issuance.platform import Platform
from tests.conftest import Server
from tests.factories import IssuerClient, new_card_id, order_body


@pytest.fixture
def issuer(http: httpx.Client) -> IssuerClient:
    return IssuerClient(http)


def _count_orders(platform: Platform, card_id: str) -> int:
    with platform.engine.connect() as connection:
        return int(
            connection.scalar(
                select(func.count()).select_from(OrderRow).where(OrderRow.card_id == card_id)
            )
            or 0
        )


def test_a_retry_returns_the_original_operation(issuer: IssuerClient, server: Server) -> None:
    card_id = new_card_id()
    body = order_body(issuer.encrypt())
    first = issuer.order(card_id, body)
    again = issuer.order(card_id, body)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count_orders(server.platform, card_id) == 1


def test_a_retry_re_encrypted_by_the_client_is_still_a_replay(
    issuer: IssuerClient, server: Server
) -> None:
    """A JWE differs byte for byte each time it is made; the decrypted content is what counts."""
    card_id, pan = new_card_id(), "4539910000000002"
    body = order_body(issuer.encrypt(pan=pan))
    first = issuer.order(card_id, body)
    again = issuer.order(card_id, {**body, "encryptedData": issuer.encrypt(pan=pan)})
    assert again.json()["operationId"] == first.json()["operationId"]
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(
    "change",
    [
        {"consumerId": "someone-else"},
        {"services": {"issuance": "RENEWAL", "delivery": "laposte-lettre"}},
        {"encrypted": {"name": "GRACE HOPPER"}},
    ],
    ids=["clear-field", "services", "encrypted-field"],
)
def test_the_same_key_with_another_body_is_refused(
    issuer: IssuerClient, server: Server, change: dict[str, object]
) -> None:
    card_id = new_card_id()
    body = order_body(issuer.encrypt(pan="4539910000000002"))
    assert issuer.order(card_id, body).status_code == 202
    change = dict(change)  # the parameter is shared by both database runs
    encrypted = change.pop("encrypted", None)
    different = {**body, **change}
    if isinstance(encrypted, dict):
        different["encryptedData"] = issuer.encrypt(pan="4539910000000002", **encrypted)

    refused = issuer.order(card_id, different)
    assert refused.status_code == 422
    assert refused.json()["errorCode"] == "IDEMPOTENCY_KEY_REUSED"
    assert refused.json()["field"] == "issuerRequestId"
    assert _count_orders(server.platform, card_id) == 1


def test_the_same_key_for_another_card_is_refused(issuer: IssuerClient) -> None:
    body = order_body(issuer.encrypt())
    assert issuer.order(new_card_id(), body).status_code == 202
    refused = issuer.order(new_card_id(), body)
    assert refused.status_code == 422
    assert refused.json()["errorCode"] == "IDEMPOTENCY_KEY_REUSED"


def test_a_second_order_for_a_card_in_progress_is_refused(
    issuer: IssuerClient, server: Server
) -> None:
    card_id = new_card_id()
    assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
    second = issuer.order(card_id, order_body(issuer.encrypt()))  # a new issuerRequestId
    assert second.status_code == 409
    assert second.json()["errorCode"] == "ORDER_IN_PROGRESS"
    assert second.json()["field"] == "cardId"
    without_key = issuer.order(card_id, order_body(issuer.encrypt(), issuerRequestId=None))
    assert without_key.status_code == 409
    assert _count_orders(server.platform, card_id) == 1


RACERS = 12


def test_identical_requests_racing_create_one_order(server: Server) -> None:
    """Twelve clients send the same order at once: one order, every answer is it (or 409)."""
    card_id = new_card_id()
    with httpx.Client(base_url=server.base_url, timeout=60) as setup:
        issuer = IssuerClient(setup)
        body = order_body(issuer.encrypt())
        headers = issuer.headers

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            path = f"/banking/v1/issuers/{issuer.issuer_id}/physicalCards/{card_id}/operations:production"
            return client.post(path, json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        responses = list(pool.map(send, range(RACERS)))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {202, 409}, [r.text for r in responses]
    operation_ids = {r.json()["operationId"] for r in responses if r.status_code == 202}
    assert len(operation_ids) == 1
    assert (
        sum(1 for r in responses if r.status_code == 202 and "Idempotent-Replayed" not in r.headers)
        == 1
    )
    assert _count_orders(server.platform, card_id) == 1


def test_different_orders_racing_for_one_card_create_one_order(server: Server) -> None:
    card_id = new_card_id()
    with httpx.Client(base_url=server.base_url, timeout=60) as setup:
        issuer = IssuerClient(setup)
        bodies = [order_body(issuer.encrypt()) for _ in range(RACERS)]
        headers = issuer.headers

    def send(body: dict[str, object]) -> httpx.Response:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            path = f"/banking/v1/issuers/{issuer.issuer_id}/physicalCards/{card_id}/operations:production"
            return client.post(path, json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        responses = list(pool.map(send, bodies))

    statuses = Counter(r.status_code for r in responses)
    assert statuses[202] == 1, [r.text for r in responses]
    assert statuses[409] == RACERS - 1
    assert _count_orders(server.platform, card_id) == 1
    with server.platform.engine.connect() as connection:
        sequences = connection.scalars(
            select(EventRow.sequence).where(EventRow.card_id == card_id)
        ).all()
    assert list(sequences) == [1]
