"""The issuer's end of D1 "Notify card operations": verify, store, answer 204, then hand over.

    receiver = Receiver(CardStore("sqlite:///issuer.db"), on_change,
                        issuer_ids={"DEMOBANK01"}, secrets=["whsec_..."])
    app.include_router(receiver.router)      # POST /notifications/d1/v2/issuers/{issuerId}/cards

What each request gets:

* 404 for an issuerId not configured; 413 for a body over `max_body_bytes`;
* 401 unless a Standard Webhooks signature made with one of `secrets` is valid and its timestamp
  within `tolerance` (a real D1 signs nothing but sends a bearer token: give `authorize`);
* 204 at once for a `webhook-id` already processed (the sender's retry of a delivered message);
* 400 with D1's `errorCode`/`error`/`field` for a body that is not `{"operations": [...]}` of
  operation objects (nothing of it is stored);
* otherwise 204 once every report is stored (duplicates and stale ones recognised, `store.py`);
  the handler then runs after the answer has gone (`dispatch.py`), so a slow handler never makes
  the sender time out and retry;
* 503 with `Retry-After` when the database cannot be written: the sender retries later.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, BackgroundTasks, FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from issuance.kit.dispatch import Dispatcher, Handler
from issuance.kit.payload import MalformedBody, parse_operations
from issuance.kit.store import CardStore
from issuance.kit.webhooks import TOLERANCE, SignatureRejected, secret_bytes, verify

log = logging.getLogger("issuance.kit")

NOTIFY_PATH = "/notifications/d1/v2/issuers/{issuerId}/cards"
MAX_BODY_BYTES = 4 * 1024 * 1024
MESSAGE_ID_LENGTH = 128  # characters; longer ids are remembered by their digest
Authorize = Callable[[str], bool | Awaitable[bool]]  # the bearer token → accepted?


class _TooLarge(Exception):
    pass


def _problem(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body = {"errorCode": code, "error": f"{field}: {message}" if field else message}
    if field:
        body["field"] = field
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


class Receiver:
    """Receives notifications into a `CardStore` and calls `handler` once per real change.

    Without a handler the changes wait in the store's queue for one: `reconcile(handler=...)`,
    or a receiver started later with a handler.
    """

    def __init__(
        self,
        store: CardStore,
        handler: Handler | None = None,
        *,
        issuer_ids: Collection[str],
        secrets: Sequence[str] = (),
        authorize: Authorize | None = None,
        tolerance: float = TOLERANCE,  # seconds
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets and authorize is None:
            raise ValueError("give signing secrets (or `authorize`): anyone could post otherwise")
        if not issuer_ids:
            raise ValueError("give the issuer ids this receiver serves")
        self.store = store
        self.dispatcher = Dispatcher(store, handler) if handler is not None else None
        self.issuer_ids = frozenset(issuer_ids)
        self._keys = [secret_bytes(secret) for secret in secrets]
        self._authorize = authorize
        self.tolerance = tolerance
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.router = APIRouter(tags=["D1 notifications"])
        self.router.add_api_route(
            NOTIFY_PATH,
            self.notify,
            methods=["POST"],
            status_code=204,
            response_class=Response,
            summary="Notify card operations (D1)",
        )

    async def dispatch_pending(self) -> int:
        """Call the handler for every stored change not yet handled (after a restart, say)."""
        return await self.dispatcher.dispatch_pending() if self.dispatcher else 0

    async def notify(
        self,
        issuer_id: Annotated[str, Path(alias="issuerId")],
        request: Request,
        background: BackgroundTasks,
    ) -> Response:
        if issuer_id not in self.issuer_ids:
            return _problem(404, "ISSUER_UNKNOWN", "this receiver does not serve that issuer")
        try:
            body = await _read(request, self.max_body_bytes)
        except _TooLarge:
            return _problem(413, "PAYLOAD_TOO_LARGE", f"at most {self.max_body_bytes} bytes")
        try:
            message_id = await self._authenticate(request, body)
            items = parse_operations(body)
        except SignatureRejected as error:
            return _problem(401, "UNAUTHORIZED", str(error))
        except MalformedBody as error:
            return _problem(400, error.code, error.message, error.field)
        if items:
            record = partial(self.store.record, issuer_id, items, message_id=message_id)
            try:
                await anyio.to_thread.run_sync(record)
            except SQLAlchemyError:
                log.exception("the notification could not be stored; the sender will retry")
                return _problem(503, "STORE_UNAVAILABLE", "the issuer's store is unavailable")
        if self.dispatcher is not None:
            background.add_task(self.dispatcher.dispatch_pending)
        return Response(status_code=204)

    async def _authenticate(self, request: Request, body: bytes) -> str | None:
        """The message id to remember (None without Standard Webhooks), or SignatureRejected."""
        if self._authorize is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            accepted = token and scheme.lower() == "bearer" and self._authorize(token)
            if inspect.isawaitable(accepted):
                accepted = await accepted
            if not accepted:
                raise SignatureRejected("a valid bearer token is required")
        if not self._keys:
            return None
        message_id = verify(
            request.headers, body, keys=self._keys, now=self.clock(), tolerance=self.tolerance
        )
        if len(message_id) > MESSAGE_ID_LENGTH:
            return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()
        return message_id


def create_receiver_app(receiver: Receiver, **fastapi: Any) -> FastAPI:
    """A standalone ASGI app serving the receiver; pending handler calls run at start-up."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await receiver.dispatch_pending()
        yield

    app = FastAPI(lifespan=lifespan, **fastapi)
    app.include_router(receiver.router)
    return app
