"""`encryptedData`: ECDH-ES + A256GCM compact JWE for a known kid, or a precise refusal."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwe
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from issuance.domain.errors import InvalidRequest
from issuance.security.field_encryption import decrypt_fields, encrypt_fields
from tests.unit.builders import JWE_KID

PAN = "4539910012345676"
FIELDS = {"pan": PAN, "exp": "2911", "name": "ADA LOVELACE", "cvv2": "123"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refusal(token: str, keys: KeySet, *, field: str = "encryptedData") -> InvalidRequest:
    with pytest.raises(InvalidRequest) as raised:
        decrypt_fields(token, keys, field=field)
    error = raised.value
    assert error.field == field
    for text in (str(error), error.message, repr(error.all_problems)):
        assert PAN not in text
        assert "ADA LOVELACE" not in text
    return error


def encrypted_raw(plaintext: bytes, key: ECKey) -> str:
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid}
    return jwe.encrypt_compact(header, plaintext, key)


def with_header(token: str, **changes: Any) -> str:
    head, *rest = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    header.update(changes)
    header = {k: v for k, v in header.items() if v is not None}
    return ".".join([b64(json.dumps(header).encode()), *rest])


def flip_first_char(part: str) -> str:
    return ("B" if part[0] == "A" else "A") + part[1:]


# Round trip


def test_fields_encrypted_for_our_key_decrypt_to_the_same_object(
    jwe_key: ECKey, jwe_keys: KeySet
) -> None:
    token = encrypt_fields(FIELDS, jwe_key)

    assert decrypt_fields(token, jwe_keys) == FIELDS


def test_the_token_is_a_compact_jwe_with_d1_header(jwe_key: ECKey) -> None:
    token = encrypt_fields(FIELDS, jwe_key)

    parts = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    assert len(parts) == 5
    assert parts[1] == ""  # ECDH-ES direct key agreement: no encrypted key
    assert (header["alg"], header["enc"], header["kid"]) == ("ECDH-ES", "A256GCM", jwe_key.kid)
    assert PAN not in token


def test_an_issuer_encrypts_with_the_public_jwk_alone(jwe_key: ECKey, jwe_keys: KeySet) -> None:
    public = jwe_key.as_dict(private=False)
    assert "d" not in public

    token = encrypt_fields(FIELDS, public)

    assert decrypt_fields(token, jwe_keys) == FIELDS


def test_the_key_is_chosen_by_kid_among_several(jwe_key: ECKey) -> None:
    second = ECKey.generate_key("P-256", parameters={"kid": "platform-jwe-2"})
    ring = KeySet([jwe_key, second])

    assert decrypt_fields(encrypt_fields({"n": 1}, second), ring) == {"n": 1}
    assert decrypt_fields(encrypt_fields({"n": 2}, jwe_key), ring) == {"n": 2}


def test_nested_and_unicode_values_survive(jwe_key: ECKey, jwe_keys: KeySet) -> None:
    fields = {"name": "ÉLODIE NGUYỄN", "trackData": {"track1": "%B4539^X^2911?"}, "n": [1, 2]}

    assert decrypt_fields(encrypt_fields(fields, jwe_key), jwe_keys) == fields


def test_two_encryptions_of_the_same_fields_differ(jwe_key: ECKey) -> None:
    assert encrypt_fields(FIELDS, jwe_key) != encrypt_fields(FIELDS, jwe_key)


# Refusals


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a jwe",
        "a.b.c",  # a JWS shape
        "x.y.z.w.v",  # five parts, but no JSON header
        b64(b"[1, 2]") + "....",  # header is JSON but not an object
        b64(b'{"alg":"ECDH-ES"}') + ".a.b.c",  # four parts
        b64(b'{"alg":"ECDH-ES"}') + ".a.b.c.d.e",  # six parts
    ],
)
def test_something_that_is_not_a_compact_jwe_is_invalid(jwe_keys: KeySet, token: str) -> None:
    assert refusal(token, jwe_keys).code == "INVALID_JWE"


def test_the_refusal_names_the_field_given(jwe_keys: KeySet) -> None:
    error = refusal("nope", jwe_keys, field="cards[3].encryptedData")

    assert error.field == "cards[3].encryptedData"


@pytest.mark.parametrize(
    ("alg", "enc", "make_key"),
    [
        ("RSA-OAEP-256", "A256GCM", lambda kid: RSAKey.generate_key(2048, parameters={"kid": kid})),
        ("dir", "A256GCM", lambda kid: OctKey.generate_key(256, parameters={"kid": kid})),
        ("ECDH-ES+A256KW", "A256GCM", None),
        ("ECDH-ES", "A128GCM", None),
        ("ECDH-ES", "A256CBC-HS512", None),
    ],
)
def test_any_other_algorithm_is_unsupported(
    jwe_key: ECKey,
    jwe_keys: KeySet,
    alg: str,
    enc: str,
    make_key: Callable[[str], Any] | None,
) -> None:
    key = make_key(JWE_KID) if make_key else jwe_key
    header = {"alg": alg, "enc": enc, "kid": jwe_key.kid}
    token = jwe.encrypt_compact(header, json.dumps(FIELDS).encode(), key, algorithms=[alg, enc])

    assert refusal(token, jwe_keys).code == "UNSUPPORTED_JWE_ALGORITHM"


@pytest.mark.parametrize("changes", [{"alg": None}, {"enc": None}, {"alg": "none"}])
def test_a_header_without_the_expected_alg_and_enc_is_unsupported(
    jwe_key: ECKey, jwe_keys: KeySet, changes: dict[str, Any]
) -> None:
    token = with_header(encrypt_fields(FIELDS, jwe_key), **changes)

    assert refusal(token, jwe_keys).code == "UNSUPPORTED_JWE_ALGORITHM"


def test_a_token_for_another_kid_is_for_an_unknown_key(jwe_keys: KeySet) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": "someone-else"})

    assert refusal(encrypt_fields(FIELDS, stranger), jwe_keys).code == "UNKNOWN_JWE_KEY"


@pytest.mark.parametrize("kid", [None, 7, ""])
def test_a_missing_or_non_string_kid_is_an_unknown_key(
    jwe_key: ECKey, jwe_keys: KeySet, kid: Any
) -> None:
    token = with_header(encrypt_fields(FIELDS, jwe_key), kid=kid)

    assert refusal(token, jwe_keys).code == "UNKNOWN_JWE_KEY"


def test_a_token_for_our_kid_but_another_key_is_invalid(jwe_keys: KeySet) -> None:
    impostor = ECKey.generate_key("P-256", parameters={"kid": JWE_KID})

    assert refusal(encrypt_fields(FIELDS, impostor), jwe_keys).code == "INVALID_JWE"


@pytest.mark.parametrize("part", [2, 3, 4], ids=["iv", "ciphertext", "tag"])
def test_a_tampered_token_is_invalid(jwe_key: ECKey, jwe_keys: KeySet, part: int) -> None:
    parts = encrypt_fields(FIELDS, jwe_key).split(".")
    parts[part] = flip_first_char(parts[part])

    assert refusal(".".join(parts), jwe_keys).code == "INVALID_JWE"


def test_a_tampered_protected_header_is_invalid(jwe_key: ECKey, jwe_keys: KeySet) -> None:
    token = with_header(encrypt_fields(FIELDS, jwe_key), cty="text/plain")

    assert refusal(token, jwe_keys).code == "INVALID_JWE"


def test_a_swapped_ephemeral_key_is_invalid(jwe_key: ECKey, jwe_keys: KeySet) -> None:
    other = ECKey.generate_key("P-256").as_dict(private=False)

    token = with_header(encrypt_fields(FIELDS, jwe_key), epk=other)

    assert refusal(token, jwe_keys).code == "INVALID_JWE"


@pytest.mark.parametrize(
    "plaintext",
    [json.dumps([PAN]).encode(), json.dumps(PAN).encode(), b"4539910012345676", b"null", b"true"],
    ids=["array", "string", "number", "null", "bool"],
)
def test_json_that_is_not_an_object_is_invalid_content(
    jwe_key: ECKey, jwe_keys: KeySet, plaintext: bytes
) -> None:
    error = refusal(encrypted_raw(plaintext, jwe_key), jwe_keys)

    assert error.code == "INVALID_JWE_CONTENT"


@pytest.mark.parametrize(
    "plaintext",
    [b"pan=4539910012345676", b"", b"\xff\xfe4539910012345676"],
    ids=["not-json", "empty", "not-utf8"],
)
def test_a_plaintext_that_is_not_json_is_refused_without_echoing_it(
    jwe_key: ECKey, jwe_keys: KeySet, plaintext: bytes
) -> None:
    error = refusal(encrypted_raw(plaintext, jwe_key), jwe_keys)

    assert error.code in {"INVALID_JWE", "INVALID_JWE_CONTENT"}


# Clear text where the JWE belongs


@pytest.mark.parametrize(
    "token",
    [
        json.dumps(FIELDS),  # the card data as JSON text
        " " + json.dumps([FIELDS]),
        PAN,  # a bare PAN
        f"{PAN}=29112010000012345",  # a track 2
        f"B{PAN}^LOVELACE/ADA^2911201",  # a track 1
        "4539 9100 1234 5676 2911".replace(" ", ""),
    ],
    ids=["json", "json-array", "pan", "track2", "track1", "pan-and-expiry"],
)
def test_card_data_in_clear_is_refused_as_not_encrypted(jwe_keys: KeySet, token: str) -> None:
    assert refusal(token, jwe_keys).code == "SENSITIVE_DATA_NOT_ENCRYPTED"


def test_a_real_jwe_is_never_taken_for_clear_data(jwe_key: ECKey, jwe_keys: KeySet) -> None:
    """Base64url text may contain digits; a well-formed JWE is judged as a JWE all the same."""
    for n in range(200):
        assert decrypt_fields(encrypt_fields({"n": n}, jwe_key), jwe_keys) == {"n": n}


# Only D1's configuration


@pytest.mark.parametrize("curve", ["P-384", "P-521"])
def test_an_ephemeral_key_on_another_curve_is_unsupported(
    jwe_key: ECKey, jwe_keys: KeySet, curve: str
) -> None:
    epk = ECKey.generate_key(curve).as_dict(private=False)

    token = with_header(encrypt_fields(FIELDS, jwe_key), epk=epk)

    assert refusal(token, jwe_keys).code == "UNSUPPORTED_JWE_ALGORITHM"


@pytest.mark.parametrize(
    "epk",
    [{"kty": "OKP", "crv": "X25519", "x": "AAAA"}, {"kty": "EC"}, {"crv": "P-256"}],
    ids=["okp", "no-curve", "no-type"],
)
def test_an_ephemeral_key_of_another_type_is_unsupported(
    jwe_key: ECKey, jwe_keys: KeySet, epk: dict[str, str]
) -> None:
    token = with_header(encrypt_fields(FIELDS, jwe_key), epk=epk)

    assert refusal(token, jwe_keys).code == "UNSUPPORTED_JWE_ALGORITHM"


@pytest.mark.parametrize(
    "epk",
    [
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},  # not a point of the curve
        {"kty": "EC", "crv": "P-256", "x": 7, "y": None},
        {"kty": "EC", "crv": "P-256"},
        "not-an-object",
    ],
    ids=["off-curve", "wrong-types", "no-coordinates", "string"],
)
def test_a_broken_ephemeral_key_is_invalid_not_a_crash(
    jwe_key: ECKey, jwe_keys: KeySet, epk: Any
) -> None:
    token = with_header(encrypt_fields(FIELDS, jwe_key), epk=epk)

    assert refusal(token, jwe_keys).code in {"INVALID_JWE", "UNSUPPORTED_JWE_ALGORITHM"}


def test_compression_is_unsupported(jwe_key: ECKey, jwe_keys: KeySet) -> None:
    """D1 documents no `zip`; compressing before encrypting also leaks length information."""
    token = with_header(encrypt_fields(FIELDS, jwe_key), zip="DEF")

    assert refusal(token, jwe_keys).code == "UNSUPPORTED_JWE_ALGORITHM"


def test_both_active_keys_decrypt_and_a_retired_one_is_unknown(jwe_key: ECKey) -> None:
    """A rotation: the new key first, the previous still active, the one before retired."""
    new = ECKey.generate_key("P-256", parameters={"kid": "platform-jwe-2"})
    retired = ECKey.generate_key("P-256", parameters={"kid": "platform-jwe-0"})
    active = KeySet([new, jwe_key])

    assert decrypt_fields(encrypt_fields(FIELDS, new), active) == FIELDS
    assert decrypt_fields(encrypt_fields(FIELDS, jwe_key), active) == FIELDS
    assert refusal(encrypt_fields(FIELDS, retired), active).code == "UNKNOWN_JWE_KEY"
