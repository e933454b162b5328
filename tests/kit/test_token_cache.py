"""One token for every call, replaced shortly before it expires or after it was refused."""

from __future__ import annotations

import asyncio

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from issuance.kit.auth import JWT_BEARER, PrivateKeyAssertion, Token, TokenCache
from tests.kit.conftest import Clock

pytestmark = pytest.mark.asyncio


class Issuer:
    def __init__(self, lifetime: float = 900.0) -> None:
        self.issued = 0
        self.lifetime = lifetime

    async def __call__(self) -> Token:
        self.issued += 1
        await asyncio.sleep(0.01)  # concurrent callers pile up here
        return Token(f"token-{self.issued}", self.lifetime)


async def test_a_token_is_reused_until_a_minute_before_it_expires(clock: Clock) -> None:
    issuer = Issuer()
    cache = TokenCache(issuer, clock=clock)
    assert await cache.get() == "token-1"
    clock.advance(839)
    assert await cache.get() == "token-1"
    clock.advance(1)  # 60 s before expiry
    assert await cache.get() == "token-2"


async def test_a_short_token_is_renewed_half_way(clock: Clock) -> None:
    cache = TokenCache(Issuer(lifetime=30), clock=clock)
    assert await cache.get() == "token-1"
    clock.advance(15)
    assert await cache.get() == "token-2"


async def test_concurrent_callers_share_one_fetch(clock: Clock) -> None:
    issuer = Issuer()
    cache = TokenCache(issuer, clock=clock)
    tokens = await asyncio.gather(*(cache.get() for _ in range(20)))
    assert set(tokens) == {"token-1"}
    assert issuer.issued == 1


async def test_a_refused_token_is_forgotten_once(clock: Clock) -> None:
    cache = TokenCache(Issuer(), clock=clock)
    refused = await cache.get()
    cache.invalidate(refused)
    fresh = await cache.get()
    cache.invalidate(refused)  # a late 401 of the old token does not drop the new one
    assert await cache.get() == fresh == "token-2"


async def test_the_d1_assertion_is_signed_for_the_issuer() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "bank-2026"})
    form = PrivateKeyAssertion(key.as_dict(private=True)).form("DEMOBANK01")
    assert form["grant_type"] == JWT_BEARER
    token = jwt.decode(form["assertion"], key, algorithms=["ES256"])
    assert token.header["kid"] == "bank-2026"
    assert (token.claims["iss"], token.claims["sub"]) == ("DEMOBANK01", "DEMOBANK01")
    assert 0 < token.claims["exp"] - token.claims["iat"] <= 900
