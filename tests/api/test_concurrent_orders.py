"""Many orders at once: more requests in flight than the database pool has connections.

Each sandbox request holds its unit of work's connection and reads the sandbox clock on a
second one; with fewer connections than requests in flight, every request waited the pool's
30-second timeout and most ended in a 500 (found by bench/intake.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
from anyio import to_thread

from issuance.api.app import create_app
from issuance.platform import Platform
from issuance.settings import REQUEST_THREADS, Settings
from tests.conftest import Server
from tests.factories import IssuerClient, new_card_id, order_body

IN_FLIGHT = REQUEST_THREADS + 8  # above the server's threads and the database pool's size


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


def test_the_server_runs_as_many_requests_at_once_as_its_settings_say(
    settings: Settings, platform: Platform
) -> None:
    app = create_app(settings.model_copy(update={"request_threads": 7}), platform=platform)

    async def serving() -> float:
        async with app.router.lifespan_context(app):
            return to_thread.current_default_thread_limiter().total_tokens

    assert anyio.run(serving) == 7
