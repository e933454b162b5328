"""Many orders at once: more requests in flight than the database pool has connections.

Each sandbox request holds its unit of work's connection and reads the sandbox clock on a
second one; with fewer connections than requests in flight, every request waited the pool's
30-second timeout and most ended in a 500 (found by bench/intake.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import Server
from tests.factories import IssuerClient, new_card_id, order_body

IN_FLIGHT = 48  # above the anyio thread pool (40) and any default database pool


def test_more_concurrent_orders_than_pooled_connections_are_all_accepted(
    server: Server, http: httpx.Client
) -> None:
    issuer = IssuerClient(http)
    bodies = [(new_card_id(), order_body(issuer.encrypt())) for _ in range(IN_FLIGHT)]

    def order(item: tuple[str, dict[str, object]]) -> int:
        with httpx.Client(base_url=str(http.base_url), timeout=60) as own:
            card_id, body = item
            path = f"/banking/v1/issuers/{issuer.issuer_id}/physicalCards/{card_id}/operations:production"
            return own.post(path, json=body, headers=issuer.headers).status_code

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        codes = list(pool.map(order, bodies))

    assert codes == [202] * IN_FLIGHT
