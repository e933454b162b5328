"""ASGI middleware: correlation ids, a body size limit and one access-log line per request.

With `log_bodies` (the sandbox default) the line also carries the request and response bodies,
parsed, so that the logging's redaction processor sees their structure: values under a card-data
or credential key are dropped, PANs anywhere are masked to first 6 / last 4 (logging.py). Bodies
that are not JSON or form data, or are larger than `MAX_LOGGED_BODY`, appear as their size only.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from issuance.contract.common import CORRELATION_ID_PATTERN
from issuance.contract.sensitive import unmasked_hex_id

log = structlog.get_logger("issuance.access")
_VALID_CORRELATION_ID = re.compile(CORRELATION_ID_PATTERN)
MAX_LOGGED_BODY = 64 * 1024  # bytes; a 1000-card batch is logged as its size


def loggable_body(body: bytes, content_type: str) -> Any:
    """The body as a structure the redaction processor can walk; never raw bytes."""
    if not body:
        return None
    if len(body) > MAX_LOGGED_BODY:
        return f"<{len(body)} bytes>"
    try:
        if content_type.startswith("application/json"):
            return json.loads(body)
        if content_type.startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(body.decode(), keep_blank_values=True))
    except (ValueError, RecursionError):  # UnicodeDecodeError included; nested too deep
        pass
    return f"<{len(body)} bytes of {content_type or 'unknown type'}>"


async def _reply(send: Send, status: int, body: dict[str, Any], correlation_id: str) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"x-correlation-id", correlation_id.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class RequestContext:
    """Echo (or create) `x-correlation-id`, cap the body size, log method, path, status and time.

    Bodies are logged only with `log_bodies`, and only through the redaction processor.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        log_bodies: bool = False,
        streamed: re.Pattern[str] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.log_bodies = log_bodies
        self.streamed = streamed  # paths whose bodies the route streams (and limits) itself

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-correlation-id", b"").decode("latin-1")
        correlation_id = given or unmasked_hex_id()
        if given and not _VALID_CORRELATION_ID.match(given):
            refusal = {
                "errorCode": "FIELD_INVALID_FORMAT",
                "error": "x-correlation-id: must match ^[A-Za-z0-9_-]{1,64}$",
                "field": "x-correlation-id",
            }
            await _reply(send, 400, refusal, unmasked_hex_id())
            return
        if self.streamed is not None and self.streamed.fullmatch(scope["path"]):
            await self._pass_through(scope, receive, send, correlation_id)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reply(send, 413, self._too_large(), correlation_id)
            return
        started, response = time.perf_counter(), Response()
        body = (
            await self._read_body(receive) if scope["method"] in {"POST", "PUT", "PATCH"} else b""
        )
        if body is None:
            await _reply(send, 413, self._too_large(), correlation_id)
            return
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def tagged_send(message: Message) -> None:
            response.observe(message, keep_body=self.log_bodies)
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", correlation_id.encode()),
                ]
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            try:
                await self.app(scope, replay_receive, tagged_send)
            finally:
                self._log(scope, headers, body, response, started)

    async def _pass_through(
        self, scope: Scope, receive: Receive, send: Send, correlation_id: str
    ) -> None:
        """Correlation id and access log, but the body is left for the route to stream."""
        started, response = time.perf_counter(), Response()

        async def tagged_send(message: Message) -> None:
            response.observe(message, keep_body=False)
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", correlation_id.encode()),
                ]
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            try:
                await self.app(scope, receive, tagged_send)
            finally:
                self._log(scope, {}, b"", response, started)

    def _log(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        body: bytes,
        response: Response,
        started: float,
    ) -> None:
        bodies = {}
        if self.log_bodies:
            request_type = headers.get(b"content-type", b"").decode("latin-1")
            bodies = {
                "request_body": loggable_body(body, request_type),
                "response_body": response.loggable(),
            }
        log.info(
            "request",
            method=scope["method"],
            path=scope["path"],
            status=response.status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            **bodies,
        )

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it exceeds the limit (chunked bodies included)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> dict[str, Any]:
        return {
            "errorCode": "PAYLOAD_TOO_LARGE",
            "error": f"the body exceeds {self.max_body_bytes} bytes",
        }


def _content_type(headers: list[tuple[bytes, bytes]]) -> str:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")


class Response:
    """What is needed of a response to log it: status, type, and the body if small enough."""

    def __init__(self) -> None:
        self.status = 500  # until the application says otherwise
        self.content_type = ""
        self.size = 0
        self.chunks: list[bytes] = []

    def observe(self, message: Message, *, keep_body: bool) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.content_type = _content_type(message.get("headers", []))
        elif keep_body and message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size <= MAX_LOGGED_BODY:
                self.chunks.append(chunk)

    def loggable(self) -> Any:
        if self.size > MAX_LOGGED_BODY:
            return f"<{self.size} bytes>"
        return loggable_body(b"".join(self.chunks), self.content_type)
