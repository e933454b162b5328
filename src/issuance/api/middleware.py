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


class BodyTooLarge(Exception):
    pass


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
            body = {
                "errorCode": "FIELD_INVALID_FORMAT",
                "error": "x-correlation-id: must match ^[A-Za-z0-9_-]{1,64}$",
                "field": "x-correlation-id",
            }
            await _reply(send, 400, body, uuid.uuid4().hex)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reply(send, 413, self._too_large(), correlation_id)
            return
        started, status = time.perf_counter(), 500
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise BodyTooLarge
            return message

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
                await self.app(scope, counted_receive, tagged_send)
            except BodyTooLarge:
                status = 413
                await _reply(send, 413, self._too_large(), correlation_id)
            finally:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )

    def _too_large(self) -> dict[str, Any]:
        return {
            "errorCode": "PAYLOAD_TOO_LARGE",
            "error": f"the body exceeds {self.max_body_bytes} bytes",
        }
