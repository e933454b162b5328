"""A live issuer endpoint for the reliability suite: records every operation, fails on command.

Modes, switched at any time by the scenario: `ok` (204), `outage` (503 to everything),
`flaky` (each request 500, 502 or 504 with probability `failure_rate`, from a seeded
generator; 503 is kept for the outage, which may add `Retry-After`), `slow`
(answers after `delay` seconds), and `refused` (the listening socket is closed: connections
are refused until `start()` listens on the same port again).

Every request is recorded with its arrival time and the answer it got, and every operation of a
2xx answer is recorded as delivered: `(operationId, sequence)`, the pair a D1 receiver keys on.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Key = tuple[str, int]  # (operationId, sequence)


@dataclass(frozen=True)
class Hit:
    """One request: when it arrived, what it carried, what it was answered."""

    at: float  # time.monotonic()
    keys: tuple[Key, ...]
    status: int


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        pass


class LiveReceiver:
    """A Starlette app served by uvicorn in a daemon thread, on a fixed loopback port."""

    def __init__(self, *, seed: int = 0) -> None:
        # Held while the receiver does not listen: a port merely left free is an ephemeral port
        # any outgoing connection of the machine may take meanwhile (a PostgreSQL client did,
        # in CI), and `start()` could not listen on it again.
        self._reserved: socket.socket | None = _bound(0)
        self.port = int(self._reserved.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "ok"
        self.failure_rate = 0.5
        self.delay = 0.0
        self.retry_after: int | None = None
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._hits: list[Hit] = []
        self._delivered: Counter[Key] = Counter()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- what it saw ---

    @property
    def hits(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    @property
    def delivered(self) -> Counter[Key]:
        """How many times each operation was acknowledged with a 2xx."""
        with self._lock:
            return Counter(self._delivered)

    def _answer(self) -> tuple[int, float]:
        with self._lock:
            if self.mode == "outage":
                return 503, 0.0
            if self.mode == "flaky" and self._rng.random() < self.failure_rate:
                return self._rng.choice((500, 502, 504)), 0.0  # 503 is the outage's
            return 204, self.delay if self.mode == "slow" else 0.0

    async def _notify(self, request: Request) -> Response:
        body = json.loads(await request.body())
        keys = tuple((op["operationId"], int(op["sequence"])) for op in body["operations"])
        status, delay = self._answer()
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            self._hits.append(Hit(time.monotonic(), keys, status))
            if status < 300:
                self._delivered.update(keys)
        headers = (
            {"Retry-After": str(self.retry_after)} if status == 503 and self.retry_after else {}
        )
        return Response(status_code=status, headers=headers)

    # --- the server ---

    def start(self) -> None:
        """Listen on the receiver's port (again, after `refuse()`), answering in the set mode."""
        listener = self._reserved or _bound(self.port)
        self._reserved = None  # uvicorn listens on it, and closes it when it stops
        app = Starlette(routes=[Route("/{path:path}", self._notify, methods=["POST"])])
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=30
        )
        server = _ThreadedServer(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread

    def refuse(self) -> None:
        """Stop listening: every connection is refused until `start()`, the port kept."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None
        if self._reserved is None:
            self._reserved = _bound(self.port)

    def close(self) -> None:
        """Stop listening and give the port back."""
        self.refuse()
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    def set_mode(
        self,
        mode: str,
        *,
        failure_rate: float = 0.5,
        delay: float = 0.0,
        retry_after: int | None = None,
    ) -> None:
        with self._lock:
            self.mode, self.failure_rate, self.delay = mode, failure_rate, delay
            self.retry_after = retry_after

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _bound(port: int) -> socket.socket:
    """A loopback socket bound to `port` (0: any), not listening: connections to it are refused."""
    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound.bind(("127.0.0.1", port))
    except OSError:
        bound.close()
        raise
    return bound


def journal_keys(rows: list[Any]) -> set[Key]:
    """`(operation_id, sequence)` rows of the events table as receiver keys."""
    return {(str(row[0]), int(row[1])) for row in rows}
