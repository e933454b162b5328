"""An issuer's notification endpoint for tests: a real HTTP server on loopback that records.

It answers each request with the next scripted `Reply` (status, delay, headers), then 204 once
the script runs out, and records every request it sees: headers, raw body, what it answered.

The listening socket is bound when the receiver is built but only listens once `start()` runs,
so "the receiver is down, then comes up on the same port" needs no port juggling: before
`start()` a connection is refused (the port is bound, nobody listens), after it is served.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class Reply:
    """One scripted answer: wait `delay` seconds (and for `hold`, if set), then answer."""

    status: int = 204
    delay: float = 0.0  # seconds
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # the test sets it to let the answer go


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it, and the status it answered (or was about to)."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int

    @property
    def operations(self) -> list[dict[str, Any]]:
        operations: list[dict[str, Any]] = json.loads(self.body)["operations"]
        return operations


class Receiver:
    """A Starlette app served by uvicorn in a daemon thread on a loopback port."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._received: list[Received] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- the script and the record ---

    def answer(self, *replies: Reply | int) -> None:
        """Queue answers for the next requests (an int is a status without delay)."""
        with self._lock:
            self._script.extend(r if isinstance(r, Reply) else Reply(status=r) for r in replies)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def operations(self) -> list[dict[str, Any]]:
        """Every operation received, in arrival order (retries included)."""
        return [op for request in self.received for op in request.operations]

    async def _notify(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            reply = self._script.popleft() if self._script else Reply()
            self._received.append(
                Received(
                    path=request.url.path,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    status=reply.status,
                )
            )
        if reply.delay:
            await asyncio.sleep(reply.delay)
        while reply.hold is not None and not reply.hold.is_set():
            await asyncio.sleep(0.005)
        return Response(status_code=reply.status, headers=reply.headers)

    # --- the server ---

    def start(self) -> None:
        app = Starlette(routes=[Route("/{path:path}", self._notify, methods=["POST"])])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test receiver did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            self._socket.close()  # never served: uvicorn did not take the socket over
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
