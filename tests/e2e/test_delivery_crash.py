"""A delivery worker killed with SIGKILL mid-batch loses nothing: after a restart every state
change reaches the receiver at least once (the real `issuance worker` binary, real HTTP)."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.models import DeliveryRow
from issuance.domain.parties import NotificationEndpoint
from issuance.services.configuration import load_config
from issuance.settings import Settings
from tests.conftest import Server
from tests.factories import IssuerClient, new_card_id, order_body

ISSUANCE = Path(sys.executable).parent / "issuance"
ORDERS = 30
SLOW_RECEIVER = 0.15  # seconds per request, so that the kill lands mid-batch
CONCURRENCY = 2  # POSTs the worker keeps in flight: what a kill may leave unsettled


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        pass


class Receiver:
    """A slow issuer endpoint on loopback that records each (cardId, sequence) it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, int]] = []
        self.lock = threading.Lock()

        async def notify(request: Request) -> Response:
            time.sleep(SLOW_RECEIVER)
            body = await request.json()
            with self.lock:
                self.received.extend((op["cardId"], op["sequence"]) for op in body["operations"])
            return Response(status_code=204)

        app = Starlette(
            routes=[Route("/notifications/d1/v2/issuers/{issuer}/cards", notify, methods=["POST"])]
        )
        self.server = _ThreadedServer(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def count(self) -> int:
        with self.lock:
            return len(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "ISSUANCE_DATABASE_URL": settings.database_url,
        "ISSUANCE_KEYS_DIR": str(settings.keys_dir),
        "ISSUANCE_DELIVERY_LEASE_SECONDS": "3",  # above the endpoint timeout (1 s)
    }
    return subprocess.Popen(
        [str(ISSUANCE), "worker", "--concurrency", str(CONCURRENCY)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_worker_killed_mid_batch_loses_nothing(
    server: Server, http: httpx.Client, settings: Settings, receiver: Receiver
) -> None:
    config = read_config(SANDBOX_CONFIG)
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    endpoint = NotificationEndpoint(
        endpoint_id="main",
        base_url=receiver.url,
        max_operations_per_call=1,
        timeout_seconds=1,
        signing_secrets=(secret,),
    )
    demo = config.issuers[0].model_copy(update={"notification_endpoints": (endpoint,)})
    load_config(
        config.model_copy(update={"issuers": (demo, *config.issuers[1:])}),
        uow=server.platform.uow(),
    )
    issuer = IssuerClient(http)
    cards = [new_card_id() for _ in range(ORDERS)]
    for card_id in cards:
        assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202

    first = _start_worker(settings)
    try:
        assert _wait_for(lambda: receiver.count() >= 5, timeout=60), (
            "the first worker delivered nothing"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    delivered_before_restart = receiver.count()
    assert delivered_before_restart < ORDERS, "the kill came too late to prove anything"

    def undelivered() -> int:
        with server.platform.engine.connect() as connection:
            query = (
                select(func.count())
                .select_from(DeliveryRow)
                .where(DeliveryRow.status != "DELIVERED")
            )
            return int(connection.scalar(query) or 0)

    second = _start_worker(settings)
    try:
        assert _wait_for(lambda: undelivered() == 0, timeout=90), (
            f"{undelivered()} still undelivered"
        )
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0  # a graceful stop

    assert set(receiver.received) == {(card_id, 1) for card_id in cards}  # every change arrived
    duplicates = len(receiver.received) - ORDERS
    # Sent twice at most: the POSTs in flight at the kill, and those answered whose settlement
    # was not yet written (group commit): each bounded by the worker's concurrency.
    assert 0 <= duplicates <= 2 * CONCURRENCY
