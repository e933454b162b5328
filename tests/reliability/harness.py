"""Real processes for the reliability suite: the API, the delivery worker, and an issuer's load.

The API runs the ASGI factory `issuance serve` runs (`issuance.cli.asgi:app_from_environment`)
under uvicorn in its own process, in sandbox mode so the simulator moves orders along. Not the
`serve --sandbox` command itself: that reloads `sandbox.yaml` at every start, which would point
DEMOBANK01's endpoint back at :9001 after each restart instead of at the test's receiver.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.models import DeliveryRow, EventRow, OrderRow
from issuance.domain.parties import NotificationEndpoint
from issuance.platform import Platform
from issuance.services.configuration import load_config
from tests.factories import DEMO, SECRETS, card_data, encrypt, order_body
from tests.reliability.receiver import Key, journal_keys

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def point_demo_at(platform: Platform, receiver_url: str, *, timeout: float = 2.0) -> None:
    """Load the sandbox configuration with DEMOBANK01 notifying `receiver_url`."""
    config = read_config(SANDBOX_CONFIG)
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    endpoint = NotificationEndpoint(
        endpoint_id="main",
        base_url=receiver_url,
        max_operations_per_call=10,
        timeout_seconds=timeout,
        signing_secrets=(secret,),
    )
    issuers = tuple(
        i.model_copy(update={"notification_endpoints": (endpoint,)}) if i.issuer_id == DEMO else i
        for i in config.issuers
    )
    load_config(config.model_copy(update={"issuers": issuers}), uow=platform.uow())


@dataclass
class Processes:
    """The API and the worker as child processes, killed and restarted at will."""

    database_url: str
    keys_dir: Path
    log_dir: Path
    simulator_step: float = 0.5
    lease_seconds: float = 4.0
    port: int = field(default_factory=free_port)
    api: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    starts: int = 0
    worker_metrics_port: int = 0
    extra_environment: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _environment(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("ISSUANCE_")},
            "ISSUANCE_DATABASE_URL": self.database_url,
            "ISSUANCE_KEYS_DIR": str(self.keys_dir),
            "ISSUANCE_SANDBOX": "true",
            "ISSUANCE_DELIVER_IN_SERVER": "false",  # the worker delivers
            "ISSUANCE_SIMULATOR_STEP_SECONDS": str(self.simulator_step),
            "ISSUANCE_SIMULATOR_INTERVAL_SECONDS": str(self.simulator_step),
            "ISSUANCE_DELIVERY_LEASE_SECONDS": str(self.lease_seconds),
            "ISSUANCE_LOG_BODIES": "false",
            **self.extra_environment,
        }

    def _log(self, name: str) -> Any:
        self.starts += 1
        return (self.log_dir / f"{name}-{self.starts:03d}.log").open("wb")

    def start_api(self, *, wait: bool = True) -> None:
        argv = [
            str(BIN / "python"),
            "-m",
            "uvicorn",
            "--factory",
            "issuance.cli.asgi:app_from_environment",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        with self._log("api") as log:
            self.api = subprocess.Popen(
                argv, env=self._environment(), stdout=log, stderr=subprocess.STDOUT
            )
        if wait:
            self.wait_for_api()

    def wait_for_api(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.api is not None
            if self.api.poll() is not None:
                raise RuntimeError(f"the API exited with {self.api.returncode}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the API did not answer in time")

    def start_worker(self, *, wait: bool = False) -> None:
        """Start `issuance worker`; with `wait`, until its metrics port answers (it is pumping)."""
        self.worker_metrics_port = free_port()
        argv = [str(BIN / "issuance"), "worker", "--interval", "1", "--concurrency", "16"]
        argv += ["--metrics-port", str(self.worker_metrics_port)]
        with self._log("worker") as log:
            self.worker = subprocess.Popen(
                argv, env=self._environment(), stdout=log, stderr=subprocess.STDOUT
            )
        if wait:
            self.wait_for_worker()

    def wait_for_worker(self, timeout: float = 60) -> None:
        """Until the worker's metrics port answers: it is pumping, and stops on SIGTERM."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.worker is not None
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start ({self.worker.returncode})")
            try:
                url = f"http://127.0.0.1:{self.worker_metrics_port}/"
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)

    def kill(self, which: str) -> None:
        process = self.api if which == "api" else self.worker
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self, which: str) -> int | None:
        """SIGTERM and wait: the graceful stop (the worker settles what it has in flight).

        A worker restarted moments ago is let start first: a SIGTERM while it still imports
        ends it before its handler is set (exit -15), and there was nothing to settle anyway.
        """
        process = self.api if which == "api" else self.worker
        if process is None or process.poll() is not None:
            return None
        if which == "worker":
            self.wait_for_worker()
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=10)

    def close(self) -> None:
        for which in ("api", "worker"):
            self.kill(which)


def token(base_url: str, issuer_id: str = DEMO, *, timeout: float = 60) -> str:
    client_id, secret = SECRETS[issuer_id]
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.post(
                f"{base_url}/authz/v1/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                },
                timeout=10,
            )
            if answer.status_code == 200:
                return str(answer.json()["access_token"])
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("no token in time")
        time.sleep(0.2)


@dataclass
class LoadResult:
    """What the issuer's client saw: the 202s it got, and every 5xx or surprise on the way."""

    accepted: dict[str, tuple[str, str]] = field(default_factory=dict)  # card → (request, op)
    server_errors: list[tuple[int, str]] = field(default_factory=list)
    unexpected: list[tuple[int, str]] = field(default_factory=list)
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Client:
    """One issuer backend placing orders as a D1 client does (see `place_orders`)."""

    def __init__(self, base_url: str, result: LoadResult, deadline: float) -> None:
        self.base_url = base_url
        self.result = result
        self.deadline = deadline
        self.jwks: dict[str, Any] = httpx.get(
            f"{base_url}/.well-known/jwks.json", timeout=30
        ).json()
        self.bearer = token(base_url)

    def order(self, http: httpx.Client, card_id: str) -> bool:
        """True once the card is accepted; False if a refusal makes retrying pointless."""
        body = order_body(encrypt(card_data(), self.jwks))
        path = f"/banking/v1/issuers/{DEMO}/physicalCards/{card_id}/operations:production"
        while time.monotonic() < self.deadline:
            try:
                answer = http.post(
                    path, json=body, headers={"Authorization": f"Bearer {self.bearer}"}
                )
            except httpx.TransportError:
                answer = None
                with self.result.lock:
                    self.result.retries += 1
            if answer is not None and answer.status_code == 202:
                with self.result.lock:
                    operation = answer.json()["operationId"]
                    self.result.accepted[card_id] = (body["issuerRequestId"], operation)
                return True
            if answer is not None and not self._retryable(answer):
                return False
            time.sleep(0.1)
        with self.result.lock:
            self.result.unexpected.append((0, f"no answer for {card_id} before the deadline"))
        return False

    def _retryable(self, answer: httpx.Response) -> bool:
        code = _error_code(answer)
        with self.result.lock:
            self.result.retries += 1
            if answer.status_code >= 500:
                self.result.server_errors.append((answer.status_code, code))
                return True
            if answer.status_code == 409 and code == "CONCURRENT_REQUEST":
                return True
            if answer.status_code != 401:
                self.result.unexpected.append((answer.status_code, code))
                return False
        self.bearer = token(self.base_url)  # expired during a long soak
        return True


def place_orders(
    base_url: str,
    cards: list[str],
    *,
    threads: int,
    result: LoadResult,
    on_accepted: Callable[[int], None] = lambda _count: None,
    deadline_seconds: float = 600,
) -> None:
    """Order each card once, as a D1 client does: the same body again after a connection error
    (same `issuerRequestId`), again after 409 CONCURRENT_REQUEST; a 5xx is counted, then retried."""
    client = _Client(base_url, result, time.monotonic() + deadline_seconds)

    def run(share: list[str]) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            for card_id in share:
                if client.order(http, card_id):
                    with result.lock:
                        count = len(result.accepted)
                    on_accepted(count)

    pool = [threading.Thread(target=run, args=(cards[i::threads],)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _error_code(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("errorCode", ""))
    except ValueError:
        return ""


def journal(platform: Platform) -> set[Key]:
    with platform.engine.connect() as connection:
        rows = connection.execute(select(EventRow.operation_id, EventRow.sequence)).all()
    return journal_keys(list(rows))


def undelivered(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        query = (
            select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status != "DELIVERED")
        )
        return int(connection.scalar(query) or 0)


def orders_by_request(platform: Platform) -> dict[str, list[tuple[str, str]]]:
    """issuerRequestId → [(cardId, operationId)] for every stored order."""
    found: dict[str, list[tuple[str, str]]] = {}
    with platform.engine.connect() as connection:
        rows = connection.execute(
            select(OrderRow.issuer_request_id, OrderRow.card_id, OrderRow.operation_id)
        ).all()
    for request_id, card_id, operation_id in rows:
        found.setdefault(str(request_id), []).append((str(card_id), str(operation_id)))
    return found


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
