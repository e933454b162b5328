"""Endpoints that want a bearer token get one: fetched from the issuer's OAuth server with client
credentials, reused while valid, fetched again after a 401; a dead token server is a retry."""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.delivery.worker import DeliveryWorker
from issuance.domain.parties import NotificationEndpoint, OutboundOAuth
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.services.workflow import Action
from tests.conftest import Server
from tests.integration.test_delivery import Clock, by_card, order_cards

CLIENT_ID, CLIENT_SECRET = "d1-notifier", secrets.token_urlsafe(16)


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        pass


class IssuerSide:
    """The issuer's OAuth server and its callback, which wants the current token."""

    def __init__(self) -> None:
        self.current = ""
        self.token_requests: list[dict[str, str]] = []
        self.authorizations: list[str] = []
        self.token_status = 200
        self.lock = threading.Lock()

        async def token(request: Request) -> Response:
            form = dict(await request.form())
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            with self.lock:
                self.token_requests.append({k: str(v) for k, v in form.items()})
                if self.token_status != 200:
                    return Response(status_code=self.token_status)
                if request.headers.get("authorization") != f"Basic {basic}":
                    return JSONResponse({"error": "invalid_client"}, status_code=401)
                self.current = secrets.token_urlsafe(12)
                return JSONResponse({"access_token": self.current, "expires_in": 3600})

        async def notify(request: Request) -> Response:
            with self.lock:
                given = request.headers.get("authorization", "")
                self.authorizations.append(given)
                ok = bool(self.current) and given == f"Bearer {self.current}"
            return Response(status_code=204 if ok else 401)

        app = Starlette(
            routes=[
                Route("/oauth/token", token, methods=["POST"]),
                Route("/notifications/d1/v2/issuers/{issuer}/cards", notify, methods=["POST"]),
            ]
        )
        self.server = _ThreadedServer(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def revoke(self) -> None:
        with self.lock:
            self.current = "revoked-" + secrets.token_hex(4)


@pytest.fixture
def issuer_side() -> Iterator[IssuerSide]:
    side = IssuerSide()
    side.thread.start()
    while not side.server.started:
        threading.Event().wait(0.01)
    yield side
    side.server.should_exit = True
    side.thread.join(timeout=5)


def point_at(platform: Platform, side: IssuerSide) -> None:
    sandbox = read_config(SANDBOX_CONFIG)
    endpoint = NotificationEndpoint(
        endpoint_id="main",
        base_url=side.url,
        max_operations_per_call=1,
        timeout_seconds=2,
        oauth=OutboundOAuth(
            token_url=f"{side.url}/oauth/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            scope="notifications",
        ),
    )
    demo = sandbox.issuers[0].model_copy(update={"notification_endpoints": (endpoint,)})
    issuers = (demo, *sandbox.issuers[1:])
    load_config(sandbox.model_copy(update={"issuers": issuers}), uow=platform.uow())


def test_one_token_serves_every_post_until_the_endpoint_refuses_it(
    server: Server, http: httpx.Client, issuer_side: IssuerSide
) -> None:
    platform = server.platform
    point_at(platform, issuer_side)
    cards = order_cards(http, platform, 3, moves=[Action.PREPARE])
    clock = Clock()
    worker = DeliveryWorker(platform, clock=clock)

    assert worker.run_once() == 3  # sequence 1 of each card, three POSTs
    assert issuer_side.token_requests == [
        {"grant_type": "client_credentials", "scope": "notifications"}
    ]
    assert set(issuer_side.authorizations) == {f"Bearer {issuer_side.current}"}

    first_token = issuer_side.current
    issuer_side.revoke()  # the issuer rotates: our token is now refused
    assert worker.run_once() == 3
    assert issuer_side.authorizations[-3:] == [f"Bearer {first_token}"] * 3
    assert by_card(platform.engine) == {card: ["DELIVERED", "PENDING"] for card in cards}

    clock.advance(timedelta(minutes=1))  # the retries are due; a new token is fetched once
    assert worker.run_once() == 3
    assert len(issuer_side.token_requests) == 2
    assert by_card(platform.engine) == {card: ["DELIVERED", "DELIVERED"] for card in cards}
    assert issuer_side.authorizations[-1] == f"Bearer {issuer_side.current}"


def test_a_token_server_that_fails_is_a_retry_not_a_post_without_a_token(
    server: Server, http: httpx.Client, issuer_side: IssuerSide
) -> None:
    platform = server.platform
    point_at(platform, issuer_side)
    [card] = order_cards(http, platform, 1)
    issuer_side.token_status = 503
    clock = Clock()
    worker = DeliveryWorker(platform, clock=clock)

    assert worker.run_once() == 1
    assert issuer_side.authorizations == []  # nothing sent without a token
    assert by_card(platform.engine) == {card: ["PENDING"]}
    with platform.engine.connect() as connection:
        error = connection.exec_driver_sql("SELECT last_error FROM deliveries").scalar_one()
    assert error == "OAuth: token endpoint answered 503"
    assert CLIENT_SECRET not in error

    issuer_side.token_status = 200
    clock.advance(timedelta(minutes=1))
    assert worker.run_once() == 1
    assert by_card(platform.engine) == {card: ["DELIVERED"]}
