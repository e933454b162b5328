"""ASGI middleware: correlation ids, a body size limit and one access-log line per request."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from issuance.contract.common import CORRELATION_ID_PATTERN

log = structlog.get_logger("issuance.access")
_VALID_CORRELATION_ID = re.compile(CORRELATION_ID_PATTERN)


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

    The body is never logged: it may hold addresses and, before decryption, sensitive JWE.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-correlation-id", b"").decode("latin-1")
        correlation_id = given or uuid.uuid4().hex
        if given and not _VALID_CORRELATION_ID.match(given):
            refusal = {
                "errorCode": "FIELD_INVALID_FORMAT",
                "error": "x-correlation-id: must match ^[A-Za-z0-9_-]{1,64}$",
                "field": "x-correlation-id",
            }
            await _reply(send, 400, refusal, uuid.uuid4().hex)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reply(send, 413, self._too_large(), correlation_id)
            return
        started, status = time.perf_counter(), 500
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
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", correlation_id.encode()),
                ]
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            try:
                await self.app(scope, replay_receive, tagged_send)
            finally:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
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
