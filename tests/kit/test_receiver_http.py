"""The receiver behind a real uvicorn, posted to by the platform's own notification sender."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from issuance.delivery.sender import send
from issuance.domain.parties import NotificationEndpoint
from issuance.kit import CardChange, CardStore, Receiver, create_receiver_app
from tests.kit.conftest import ISSUER, SECRET, new_card, operation


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        pass


class SlowHandler:
    """Blocks until the test lets it go, to show the 204 does not wait for it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.done: list[CardChange] = []

    def __call__(self, change: CardChange) -> None:
        self.started.set()
        assert self.release.wait(timeout=10)
        self.done.append(change)


@pytest.fixture
def handler() -> SlowHandler:
    return SlowHandler()


@pytest.fixture
def base_url(sqlite_store: CardStore, handler: SlowHandler) -> Iterator[str]:
    receiver = Receiver(sqlite_store, handler, issuer_ids={ISSUER}, secrets=[SECRET])
    config = uvicorn.Config(create_receiver_app(receiver), port=0, log_level="warning")
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the receiver did not start")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    handler.release.set()
    server.should_exit = True
    thread.join(timeout=10)


def test_the_platform_sender_is_acknowledged_before_the_handler_finishes(
    base_url: str, handler: SlowHandler, sqlite_store: CardStore
) -> None:
    endpoint = NotificationEndpoint(endpoint_id="kit", base_url=base_url, signing_secrets=(SECRET,))
    card = new_card()
    report = operation(card, "CARD_PROD_REQUESTED", sequence=1)
    with httpx.Client() as client:
        sent = send(client, endpoint, issuer_id=ISSUER, operations=[report], message="msg_1")
        assert sent.outcome.status_code == 204
        assert handler.started.wait(timeout=10)
        assert handler.done == []  # acknowledged while the handler is still at work
        handler.release.set()
        again = send(client, endpoint, issuer_id=ISSUER, operations=[report], message="msg_1")
        assert again.outcome.status_code == 204  # the sender's retry: nothing more happens
    deadline = time.monotonic() + 10
    while not handler.done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [change.card_id for change in handler.done] == [card]
    assert [op.details.status for op in sqlite_store.operations(ISSUER)] == ["CARD_PROD_REQUESTED"]
