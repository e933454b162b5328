"""Access tokens (HS256, ours) and D1 JWT-bearer assertions (ES256, the issuer's)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from issuance.domain.errors import Unauthenticated
from issuance.security.tokens import (
    CLOCK_SKEW,
    MAX_ASSERTION_LIFETIME,
    Principal,
    VerifiedTokens,
    assertion_header,
    hash_secret,
    issue_token,
    secret_matches,
    verify_assertion,
    verify_token,
)
from tests.unit.builders import ISSUER_KID, TOKEN_KID

NOW = 1_750_000_000  # a fixed clock: 2025-06-15T15:06:40Z
ISSUER = "https://issuance.example/"
PRINCIPAL = Principal(issuer_id="DEMOBANK01", client_id="demobank01")
ISSUER_ID = "DEMOBANK01"


def payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


def refused_token(token: str, key: OctKey, *, issuer: str = ISSUER, now: float = NOW) -> str:
    with pytest.raises(Unauthenticated) as raised:
        verify_token(token, key=key, issuer=issuer, now=now)
    assert raised.value.field == "Authorization"
    return raised.value.code


# Our access tokens


def test_an_issued_token_verifies_to_its_principal(token_key: OctKey) -> None:
    token = issue_token(PRINCIPAL, key=token_key, issuer=ISSUER, ttl=3600, now=NOW)

    assert verify_token(token, key=token_key, issuer=ISSUER, now=NOW + 10) == PRINCIPAL


def test_an_issued_token_carries_the_expected_claims(token_key: OctKey) -> None:
    token = issue_token(PRINCIPAL, key=token_key, issuer=ISSUER, ttl=600, now=NOW)

    claims = payload(token)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "demobank01"
    assert claims["issuerId"] == "DEMOBANK01"
    assert (claims["iat"], claims["exp"]) == (NOW, NOW + 600)
    assert "d1-api:physical-card:order" in claims["scope"].split()


def test_two_tokens_have_different_ids(token_key: OctKey) -> None:
    first = issue_token(PRINCIPAL, key=token_key, issuer=ISSUER, ttl=60, now=NOW)
    second = issue_token(PRINCIPAL, key=token_key, issuer=ISSUER, ttl=60, now=NOW)

    assert payload(first)["jti"] != payload(second)["jti"]


@pytest.mark.parametrize("later", [600, 601, 10_000])
def test_an_expired_token_is_refused(token_key: OctKey, later: int) -> None:
    token = issue_token(PRINCIPAL, key=token_key, issuer=ISSUER, ttl=600, now=NOW)

    assert refused_token(token, token_key, now=NOW + later) == "TOKEN_EXPIRED"


def test_a_token_is_valid_until_its_last_second(token_key: OctKey) -> None:
    token = issue_token(PRINCIPAL, key=token_key, issuer=ISSUER, ttl=600, now=NOW)

    assert verify_token(token, key=token_key, issuer=ISSUER, now=NOW + 599) == PRINCIPAL


def test_a_token_signed_with_another_key_is_refused(token_key: OctKey) -> None:
    other = OctKey.generate_key(256, parameters={"kid": TOKEN_KID})
    token = issue_token(PRINCIPAL, key=other, issuer=ISSUER, ttl=600, now=NOW)

    assert refused_token(token, token_key) == "UNAUTHORIZED"


def test_a_token_from_another_issuer_is_refused(token_key: OctKey) -> None:
    token = issue_token(
        PRINCIPAL, key=token_key, issuer="https://elsewhere.example/", ttl=600, now=NOW
    )

    refused_token(token, token_key)


def test_a_tampered_token_is_refused(token_key: OctKey) -> None:
    token = issue_token(PRINCIPAL, key=token_key, issuer=ISSUER, ttl=600, now=NOW)
    head, _, signature = token.split(".")
    claims = payload(token) | {"issuerId": "OTHERBNK02"}
    forged = ".".join(
        [
            head,
            base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode(),
            signature,
        ]
    )

    assert refused_token(forged, token_key) == "UNAUTHORIZED"


def test_an_unsigned_token_is_refused(token_key: OctKey) -> None:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"iss": ISSUER, "sub": "c", "issuerId": "DEMOBANK01", "exp": NOW + 600}
    unsigned = f"{part({'alg': 'none'})}.{part(claims)}."

    assert refused_token(unsigned, token_key) == "UNAUTHORIZED"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "....", "Zm9v.Zm9v.Zm9v"])
def test_garbage_is_refused(token_key: OctKey, token: str) -> None:
    assert refused_token(token, token_key) == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": ISSUER, "sub": "c", "issuerId": "DEMOBANK01"},  # no exp
        {"iss": ISSUER, "sub": "c", "issuerId": "DEMOBANK01", "exp": "9999999999"},
        {"iss": ISSUER, "sub": "c", "exp": NOW + 600},  # no issuerId
        {"iss": ISSUER, "issuerId": "DEMOBANK01", "exp": NOW + 600},  # no sub
    ],
)
def test_a_correctly_signed_token_with_bad_claims_is_refused(
    token_key: OctKey, claims: dict[str, Any]
) -> None:
    token = jwt.encode({"alg": "HS256"}, claims, token_key)

    refused_token(token, token_key)


# D1 JWT-bearer assertions

GOOD_CLAIMS: dict[str, Any] = {"iss": ISSUER_ID, "sub": ISSUER_ID, "exp": NOW + 300}


def signed(key: ECKey, claims: dict[str, Any], *, header: dict[str, Any] | None = None) -> str:
    """An assertion with exactly these claims, signed ES256 by `key`."""
    head = header or {"alg": "ES256", "kid": key.kid}
    return jwt.encode(head, claims, key, algorithms=["ES256"])


def assertion(key: ECKey, **changes: Any) -> str:
    return signed(key, {**GOOD_CLAIMS, **changes})


def public(key: ECKey) -> list[dict[str, Any]]:
    return [key.as_dict(private=False)]


def refused_assertion(token: str, keys: list[dict[str, Any]]) -> str:
    with pytest.raises(Unauthenticated) as raised:
        verify_assertion(token, keys, now=NOW)
    assert raised.value.code == "INVALID_GRANT"
    assert raised.value.field == "assertion"
    return raised.value.message


def test_a_good_assertion_gives_the_issuer_id(issuer_key: ECKey) -> None:
    assert verify_assertion(assertion(issuer_key), public(issuer_key), now=NOW) == ISSUER_ID


def test_the_key_is_found_by_kid_among_the_issuers_keys(issuer_key: ECKey) -> None:
    other = ECKey.generate_key("P-256", parameters={"kid": "issuer-sig-0"})
    keys = public(other) + public(issuer_key)

    assert verify_assertion(assertion(issuer_key), keys, now=NOW) == ISSUER_ID


@pytest.mark.parametrize("ahead", [1, 300, MAX_ASSERTION_LIFETIME])
def test_an_assertion_expiring_within_15_minutes_is_accepted(issuer_key: ECKey, ahead: int) -> None:
    token = assertion(issuer_key, exp=NOW + ahead)

    assert verify_assertion(token, public(issuer_key), now=NOW) == ISSUER_ID


@pytest.mark.parametrize(
    "ahead",
    [MAX_ASSERTION_LIFETIME + CLOCK_SKEW + 1, 20 * 60, 24 * 3600],
    ids=["15m-plus-skew-plus-1s", "20m", "1d"],
)
def test_an_assertion_expiring_too_far_ahead_is_refused(issuer_key: ECKey, ahead: int) -> None:
    token = assertion(issuer_key, exp=NOW + ahead)

    assert "15 minutes" in refused_assertion(token, public(issuer_key))


@pytest.mark.parametrize(
    "exp", [NOW, NOW - 1, "soon", NOW - 0.5], ids=["now", "past", "str", "past-fraction"]
)
def test_an_expired_or_malformed_exp_is_refused(issuer_key: ECKey, exp: Any) -> None:
    token = assertion(issuer_key, exp=exp)

    assert "15 minutes" in refused_assertion(token, public(issuer_key))


def test_an_assertion_without_exp_is_refused(issuer_key: ECKey) -> None:
    token = signed(issuer_key, {"iss": ISSUER_ID, "sub": ISSUER_ID})

    refused_assertion(token, public(issuer_key))


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": ISSUER_ID, "sub": "OTHERBNK02"},
        {"iss": ISSUER_ID},
        {"sub": ISSUER_ID},
        {},
        {"iss": 42, "sub": 42},
    ],
    ids=["different", "no-sub", "no-iss", "neither", "not-strings"],
)
def test_iss_and_sub_must_both_be_the_issuer_id(issuer_key: ECKey, claims: dict[str, Any]) -> None:
    token = signed(issuer_key, {"exp": NOW + 300, **claims})

    assert "iss and sub" in refused_assertion(token, public(issuer_key))


def test_an_assertion_signed_by_another_key_is_refused(issuer_key: ECKey) -> None:
    impostor = ECKey.generate_key("P-256", parameters={"kid": ISSUER_KID})

    assert "signature" in refused_assertion(assertion(impostor), public(issuer_key))


def test_an_assertion_with_an_altered_payload_is_refused(issuer_key: ECKey) -> None:
    head, _, signature = assertion(issuer_key).split(".")
    body = base64.urlsafe_b64encode(
        json.dumps({"iss": "OTHERBNK02", "sub": "OTHERBNK02", "exp": NOW + 300}).encode()
    )
    forged = f"{head}.{body.rstrip(b'=').decode()}.{signature}"

    assert "signature" in refused_assertion(forged, public(issuer_key))


def test_an_hs256_assertion_is_refused(issuer_key: ECKey) -> None:
    claims = {"iss": ISSUER_ID, "sub": ISSUER_ID, "exp": NOW + 300}
    token = jwt.encode({"alg": "HS256", "kid": issuer_key.kid}, claims, OctKey.generate_key(256))

    refused_assertion(token, public(issuer_key))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c"])
def test_an_assertion_that_is_not_a_jwt_is_refused(issuer_key: ECKey, token: str) -> None:
    refused_assertion(token, public(issuer_key))


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "a.b", "Zm9v.Zm9v.Zm9v", "...."])
def test_a_garbage_assertion_header_is_refused(token: str) -> None:
    with pytest.raises(Unauthenticated) as raised:
        assertion_header(token)

    assert raised.value.code == "INVALID_GRANT"


def test_the_assertion_header_gives_the_kid(issuer_key: ECKey) -> None:
    header = assertion_header(assertion(issuer_key))

    assert header["kid"] == issuer_key.kid


# Client secrets


def test_a_secret_hash_is_sha256_hex() -> None:
    # FIPS 180-2 test vector for "abc"
    assert hash_secret("abc") == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_the_right_secret_matches_its_hash() -> None:
    assert secret_matches("sandbox-secret", hash_secret("sandbox-secret"))


@pytest.mark.parametrize("candidate", ["sandbox-secreT", "", "sandbox-secret "])
def test_another_secret_does_not_match(candidate: str) -> None:
    assert not secret_matches(candidate, hash_secret("sandbox-secret"))


def test_no_stored_hash_matches_nothing() -> None:
    assert not secret_matches("", None)
    assert not secret_matches("sandbox-secret", None)


def test_a_fractional_exp_is_a_numeric_date_too(issuer_key: ECKey) -> None:
    """RFC 7519 NumericDate may be fractional."""
    token = assertion(issuer_key, exp=NOW + 300.5)
    assert verify_assertion(token, public(issuer_key), now=NOW) == ISSUER_ID


# Remembered verifications (api/deps.py): never more lenient than verify_token


def test_a_remembered_token_still_expires(token_key: OctKey) -> None:
    tokens = VerifiedTokens()
    token = issue_token(PRINCIPAL, key=token_key, issuer=ISSUER, ttl=600, now=NOW)

    assert tokens.verify(token, key=token_key, issuer=ISSUER, now=NOW + 10) == PRINCIPAL
    with pytest.raises(Unauthenticated) as raised:
        tokens.verify(token, key=token_key, issuer=ISSUER, now=NOW + 600)
    assert raised.value.code == "TOKEN_EXPIRED"


def test_a_remembered_token_is_refused_under_another_key_or_issuer(token_key: OctKey) -> None:
    tokens = VerifiedTokens()
    token = issue_token(PRINCIPAL, key=token_key, issuer=ISSUER, ttl=600, now=NOW)
    assert tokens.verify(token, key=token_key, issuer=ISSUER, now=NOW) == PRINCIPAL
    rotated = OctKey.generate_key(256, parameters={"kid": TOKEN_KID})

    with pytest.raises(Unauthenticated):
        tokens.verify(token, key=rotated, issuer=ISSUER, now=NOW)
    with pytest.raises(Unauthenticated):
        tokens.verify(token, key=token_key, issuer="https://elsewhere.example", now=NOW)
