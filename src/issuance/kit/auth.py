"""Access tokens: the two grants of `/authz/v1/oauth2/token`, and one cached token per client.

D1's grant is RFC 7523 JWT-bearer: the issuer signs an ES256 assertion (`kid` in the header,
`iss` = `sub` = its issuerId, `exp` at most 15 minutes ahead) with the private key whose public
half it registered at onboarding. The platform also takes client credentials (id and secret),
as its sandbox hands out. D1 asks that a token be reused until it expires rather than fetched per
call: the cache refreshes it a little before expiry, and once more when a call answers 401.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

TOKEN_PATH = "/authz/v1/oauth2/token"  # noqa: S105 (a path, not a secret)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFRESH_MARGIN = 60.0  # seconds before expiry at which a token is replaced


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """The client-credentials grant (the platform's sandbox; not D1's)."""

    client_id: str
    client_secret: str = field(repr=False)

    def form(self, _issuer_id: str) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }


class PrivateKeyAssertion:
    """D1's JWT-bearer grant: each token request carries a fresh ES256 assertion.

    `key` is the EC P-256 private key as a joserfc `ECKey`, a JWK dict or PEM text; its `kid` must
    be the one registered with the platform (pass `kid` when the key itself carries none).
    """

    def __init__(
        self,
        key: ECKey | dict[str, Any] | str | bytes,
        *,
        kid: str | None = None,
        audience: str | None = None,
        lifetime: int = 300,  # seconds; D1 refuses more than 15 minutes
    ) -> None:
        self._key = key if isinstance(key, ECKey) else ECKey.import_key(key)
        self.kid = kid or self._key.kid
        if not self.kid:
            raise ValueError("the assertion key needs a kid (the id registered with the platform)")
        self.audience = audience
        self.lifetime = lifetime

    def __repr__(self) -> str:
        return f"PrivateKeyAssertion(kid={self.kid!r})"

    def form(self, issuer_id: str) -> dict[str, str]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer_id,
            "sub": issuer_id,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
        }
        if self.audience:
            claims["aud"] = self.audience
        header = {"alg": "ES256", "kid": self.kid, "typ": "JWT"}
        assertion = jwt.encode(header, claims, self._key, algorithms=["ES256"])
        return {"grant_type": JWT_BEARER, "assertion": assertion}


Credentials = ClientSecret | PrivateKeyAssertion


@dataclass(frozen=True, slots=True)
class Token:
    value: str = field(repr=False)
    lifetime: float  # seconds, from `expires_in`


class TokenCache:
    """One token shared by concurrent calls; fetched by one of them when missing or stale.

    A token is replaced `REFRESH_MARGIN` seconds before it expires (or half-way through, for
    tokens shorter than twice the margin), so a call never leaves with a token about to lapse.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Token]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._value: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._value is not None and self._clock() < self._refresh_at:
            return self._value
        async with self._lock:
            if self._value is None or self._clock() >= self._refresh_at:
                started = self._clock()
                token = await self._fetch()
                margin = min(REFRESH_MARGIN, token.lifetime / 2)
                self._value, self._refresh_at = token.value, started + token.lifetime - margin
            return self._value

    def invalidate(self, value: str) -> None:
        """Forget `value` (refused with a 401), unless another call already replaced it."""
        if self._value == value:
            self._value = None
