"""Access tokens: short-lived JWTs bound to one issuer and one API client.

Two grants obtain one, both at D1's path `/authz/v1/oauth2/token`:

* D1's JWT-bearer grant (RFC 7523): the issuer signs an ES256 assertion with `kid` in its header,
  `iss` and `sub` its issuerId and `exp` at most 15 minutes ahead; we check it against the public
  keys configured for the issuer's clients.
* client credentials (RFC 6749 §4.4) with a client id and secret: not D1's, offered so a sandbox
  can be tried with curl.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OctKey

from issuance.domain.errors import Unauthenticated

TOKEN_ALGORITHM = "HS256"  # noqa: S105 (a name, not a secret)
ASSERTION_ALGORITHM = "ES256"
MAX_ASSERTION_LIFETIME = 15 * 60  # seconds, as D1 requires
CLOCK_SKEW = 60  # seconds of difference tolerated between the issuer's clock and ours
SCOPE = "d1-api:physical-card:order d1-api:physical-card:read"
OPERATOR_SCOPE = "bureau:operate"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an issuer's API client (bound to that issuer) or a bureau operator."""

    issuer_id: str  # empty for an operator
    client_id: str
    operator: bool = False


def hash_secret(secret: str) -> str:
    """`sha256:<hex>`, the form client secrets are stored and configured in."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    return stored_hash is not None and hmac.compare_digest(hash_secret(secret), stored_hash)


def issue_token(
    principal: Principal, *, key: OctKey, issuer: str, ttl: int, now: float | None = None
) -> str:
    moment = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": principal.client_id,
        "scope": OPERATOR_SCOPE if principal.operator else SCOPE,
        "iat": moment,
        "exp": moment + ttl,
        "jti": uuid.uuid4().hex,
    }
    if not principal.operator:
        claims["issuerId"] = principal.issuer_id
    return jwt.encode(
        {"alg": TOKEN_ALGORITHM, "kid": key.kid}, claims, key, algorithms=[TOKEN_ALGORITHM]
    )


def verify_token(token: str, *, key: OctKey, issuer: str, now: float | None = None) -> Principal:
    """The principal of a valid token; anything else is `Unauthenticated` (401)."""
    principal, _ = _verified(token, key=key, issuer=issuer, now=now)
    return principal


def _verified(token: str, *, key: OctKey, issuer: str, now: float | None) -> tuple[Principal, int]:
    """The principal and the expiry (epoch seconds) of a valid token."""
    try:
        claims = jwt.decode(token, key, algorithms=[TOKEN_ALGORITHM]).claims
    except (JoseError, ValueError):
        raise Unauthenticated("the access token is not valid", field="Authorization") from None
    moment = now if now is not None else time.time()
    if (
        claims.get("iss") != issuer
        or not isinstance(claims.get("exp"), int)
        or claims["exp"] <= moment
    ):
        raise Unauthenticated(
            "the access token is expired or not ours", field="Authorization", code="TOKEN_EXPIRED"
        )
    issuer_id, client_id = claims.get("issuerId"), claims.get("sub")
    if claims.get("scope") == OPERATOR_SCOPE and isinstance(client_id, str):
        return Principal(issuer_id="", client_id=client_id, operator=True), claims["exp"]
    if not isinstance(issuer_id, str) or not isinstance(client_id, str):
        raise Unauthenticated("the access token is not valid", field="Authorization")
    return Principal(issuer_id=issuer_id, client_id=client_id), claims["exp"]


class VerifiedTokens:
    """`verify_token` that remembers the tokens it accepted until they expire.

    A client sends the same token with every request for its lifetime; checking its MAC and
    parsing its claims again costs ~40 µs each time. An entry is keyed by the token, the signing
    key's bytes and our issuer name, so a rotated key or another platform never reuses it, and
    its expiry is checked at every use. Refusals are not remembered.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size  # tokens; the whole cache is dropped when full
        self._accepted: dict[tuple[str, bytes, str], tuple[Principal, int]] = {}

    def verify(
        self, token: str, *, key: OctKey, issuer: str, now: float | None = None
    ) -> Principal:
        moment = now if now is not None else time.time()
        entry = (token, key.raw_value, issuer)
        known = self._accepted.get(entry)
        if known is not None and known[1] > moment:
            return known[0]
        principal, expires = _verified(token, key=key, issuer=issuer, now=moment)
        if len(self._accepted) >= self.size:
            self._accepted.clear()
        self._accepted[entry] = (principal, expires)
        return principal


def assertion_header(assertion: str) -> dict[str, Any]:
    """The unverified JOSE header of an assertion, to find its `kid`."""
    try:
        return dict(jws.extract_compact(assertion.encode()).protected)
    except (JoseError, ValueError):
        raise Unauthenticated(
            "assertion is not a JWT", field="assertion", code="INVALID_GRANT"
        ) from None


def verify_assertion(
    assertion: str, public_keys: list[dict[str, Any]], *, now: float | None = None
) -> str:
    """Check a D1 JWT-bearer assertion against the issuer's keys; return its issuerId."""
    keys = KeySet([ECKey.import_key(k) for k in public_keys])
    try:
        token = jwt.decode(assertion, keys, algorithms=[ASSERTION_ALGORITHM])
    except (JoseError, ValueError):
        raise Unauthenticated(
            "assertion signature is not valid", field="assertion", code="INVALID_GRANT"
        ) from None
    claims = token.claims
    moment = now if now is not None else time.time()
    exp = claims.get("exp")
    if (
        not isinstance(exp, int | float)
        or exp <= moment
        or exp > moment + MAX_ASSERTION_LIFETIME + CLOCK_SKEW
    ):
        raise Unauthenticated(
            "assertion exp must be in the next 15 minutes", field="assertion", code="INVALID_GRANT"
        )
    if not isinstance(claims.get("iss"), str) or claims.get("iss") != claims.get("sub"):
        raise Unauthenticated(
            "assertion iss and sub must both be the issuerId",
            field="assertion",
            code="INVALID_GRANT",
        )
    return str(claims["iss"])
