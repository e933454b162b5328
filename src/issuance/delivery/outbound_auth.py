"""Bearer tokens for issuer endpoints that ask for one (OAuth 2.0 client credentials, RFC 6749).

One token per endpoint, shared by all POSTs of a worker, fetched again a little before it expires
or as soon as the endpoint answers 401. The secret goes in HTTP Basic, as the RFC prefers.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from urllib.parse import quote_plus

import aiohttp

from issuance.domain.parties import NotificationEndpoint, OutboundOAuth

EARLY = 30.0  # seconds before expiry a token is replaced
DEFAULT_LIFETIME = 300.0  # when the server does not say (expires_in is only RECOMMENDED)


class TokenUnavailable(Exception):
    """The issuer's token endpoint did not give a token; the delivery is retried later."""


class TokenCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[OutboundOAuth, tuple[str, float]] = {}
        self._locks: dict[OutboundOAuth, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def bearer(
        self, session: aiohttp.ClientSession, endpoint: NotificationEndpoint
    ) -> str | None:
        """The token to send, or None when the endpoint wants none."""
        oauth = endpoint.oauth
        if oauth is None:
            return None
        token = self._fresh(oauth)
        if token is not None:
            return token
        if self._loop is not asyncio.get_running_loop():  # locks belong to one event loop
            self._loop, self._locks = asyncio.get_running_loop(), {}
        async with self._locks.setdefault(oauth, asyncio.Lock()):  # one fetch, not one per POST
            token = self._fresh(oauth)
            if token is None:
                token, lifetime = await _fetch(session, oauth, endpoint.timeout_seconds)
                self._tokens[oauth] = (token, self._clock() + lifetime)
            return token

    def forget(self, endpoint: NotificationEndpoint) -> None:
        """The endpoint refused the token (401): the next POST fetches a new one."""
        if endpoint.oauth is not None:
            self._tokens.pop(endpoint.oauth, None)

    def _fresh(self, oauth: OutboundOAuth) -> str | None:
        cached = self._tokens.get(oauth)
        if cached is None or cached[1] - EARLY <= self._clock():
            return None
        return cached[0]


def _basic(oauth: OutboundOAuth) -> str:
    """RFC 6749 §2.3.1: id and secret form-encoded, then HTTP Basic."""
    pair = f"{quote_plus(oauth.client_id)}:{quote_plus(oauth.client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


async def _fetch(
    session: aiohttp.ClientSession, oauth: OutboundOAuth, timeout: float
) -> tuple[str, float]:
    form = {"grant_type": "client_credentials"}
    if oauth.scope:
        form["scope"] = oauth.scope
    try:
        async with session.post(
            oauth.token_url,
            data=form,
            headers={"authorization": _basic(oauth)},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            if response.status != 200:
                raise TokenUnavailable(f"token endpoint answered {response.status}")
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise TokenUnavailable(f"token endpoint unreachable: {type(error).__name__}") from error
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenUnavailable("token endpoint answered without an access_token")
    lifetime = body.get("expires_in", DEFAULT_LIFETIME)
    return token, float(lifetime) if isinstance(lifetime, int | float) else DEFAULT_LIFETIME
