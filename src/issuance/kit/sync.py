"""`IssuerClient`: the async client for code without an event loop, not a second implementation.

It owns an `AsyncIssuerClient` and a private event loop in a daemon thread (an anyio blocking
portal); each method hands the async one to that loop and waits for its result. The methods
are generated from the async ones (`_blocking`), so their signatures, documentation and logic
are those of `AsyncIssuerClient`, and mypy checks calls against them.

    with IssuerClient(url, "DEMOBANK01", ClientSecret("demobank01", secret)) as d1:
        d1.order_card("card-1", order, card_data={"pan": ..., "exp": "2911"})
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from issuance.kit.auth import Credentials
from issuance.kit.client import AsyncIssuerClient

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(
    method: Callable[Concatenate[AsyncIssuerClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[IssuerClient, P], T]:
    def call(self: IssuerClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        async def run() -> T:
            return await method(self.async_client, *args, **kwargs)

        return self._portal.call(run)

    call.__name__ = method.__name__
    call.__qualname__ = f"IssuerClient.{method.__name__}"
    call.__doc__ = method.__doc__
    return call


class IssuerClient:
    """Blocking twin of `AsyncIssuerClient`, built with the same arguments."""

    def __init__(self, base_url: str, issuer_id: str, credentials: Credentials, **options: Any):
        self._portal_context: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        try:
            self.async_client: AsyncIssuerClient = self._portal.call(
                self._build, base_url, issuer_id, credentials, options
            )
        except BaseException:
            self._portal_context.__exit__(None, None, None)
            raise

    @staticmethod
    async def _build(
        base_url: str, issuer_id: str, credentials: Credentials, options: dict[str, Any]
    ) -> AsyncIssuerClient:
        """Made on the portal's loop, where every one of its calls will run."""
        return AsyncIssuerClient(base_url, issuer_id, credentials, **options)

    @property
    def issuer_id(self) -> str:
        return self.async_client.issuer_id

    order_card = _blocking(AsyncIssuerClient.order_card)
    order_cards = _blocking(AsyncIssuerClient.order_cards)
    production_status = _blocking(AsyncIssuerClient.production_status)
    changes = _blocking(AsyncIssuerClient.changes)
    encryption_key = _blocking(AsyncIssuerClient.encryption_key)

    def run(self, function: Callable[[AsyncIssuerClient], Coroutine[Any, Any, T]]) -> T:
        """Run `function(async_client)` on the private loop, e.g. a `reconcile` call."""

        async def run() -> T:
            return await function(self.async_client)

        return self._portal.call(run)

    def close(self) -> None:
        """Close the HTTP connections, then stop the private loop and its thread."""
        try:
            self._portal.call(self.async_client.aclose)
        finally:
            self._portal_context.__exit__(None, None, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
