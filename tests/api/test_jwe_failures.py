"""Every way `encryptedData` can be wrong, over HTTP: a 400 with its own code, naming the field,
never echoing the value and never a 500, for one card, in a batch and in a dry run."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwe
from joserfc.jwk import ECKey, OctKey, RSAKey

from issuance.security.field_encryption import encrypt_fields
from tests.factories import IssuerClient, card_data, luhn_pan, new_card_id, order_body

PAN = luhn_pan("45399100")
NOT_LUHN = PAN[:-1] + str((int(PAN[-1]) + 1) % 10)
Case = Callable[[ECKey], Any]  # the platform's current public key → the encryptedData to send


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sealed(key: ECKey, plaintext: bytes, **header: Any) -> str:
    protected = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid, **header}
    algorithms = [protected["alg"], protected["enc"]]
    return jwe.encrypt_compact(protected, plaintext, key, algorithms=algorithms)


def _with_header(token: str, **changes: Any) -> str:
    head, *rest = token.split(".")
    header = {**json.loads(base64.urlsafe_b64decode(head + "==")), **changes}
    return ".".join([_b64(json.dumps(header).encode()), *rest])


def _tampered(token: str) -> str:
    parts = token.split(".")
    parts[3] = ("A" if parts[3][0] != "A" else "B") + parts[3][1:]
    return ".".join(parts)


def _impostor(key: ECKey) -> ECKey:
    """Another key under the same kid."""
    assert key.kid is not None
    return ECKey.generate_key("P-256", parameters={"kid": key.kid})


def _card(**changes: Any) -> Case:
    return lambda key: encrypt_fields(card_data(**{"pan": PAN, **changes}), key)


CASES: dict[str, tuple[Case, str, str]] = {
    # clear text where the JWE is required
    "object": (lambda _: card_data(pan=PAN), "SENSITIVE_DATA_NOT_ENCRYPTED", "encryptedData"),
    "number": (lambda _: int(PAN), "SENSITIVE_DATA_NOT_ENCRYPTED", "encryptedData"),
    "json-text": (
        lambda _: json.dumps(card_data(pan=PAN)),
        "SENSITIVE_DATA_NOT_ENCRYPTED",
        "encryptedData",
    ),
    "bare-pan": (lambda _: PAN, "SENSITIVE_DATA_NOT_ENCRYPTED", "encryptedData"),
    "track2": (lambda _: f"{PAN}=2911201", "SENSITIVE_DATA_NOT_ENCRYPTED", "encryptedData"),
    # malformed
    "not-a-jwe": (lambda _: "not-a-jwe", "INVALID_JWE", "encryptedData"),
    "jws-shape": (lambda _: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "INVALID_JWE", "encryptedData"),
    "tampered": (lambda key: _tampered(_card()(key)), "INVALID_JWE", "encryptedData"),
    "other-key-same-kid": (
        lambda key: encrypt_fields(card_data(pan=PAN), _impostor(key)),
        "INVALID_JWE",
        "encryptedData",
    ),
    # unknown kid
    "unknown-kid": (
        lambda _: encrypt_fields(
            card_data(pan=PAN), ECKey.generate_key("P-256", parameters={"kid": "not-ours"})
        ),
        "UNKNOWN_JWE_KEY",
        "encryptedData",
    ),
    "no-kid": (
        lambda key: _with_header(_card()(key), kid=None),
        "UNKNOWN_JWE_KEY",
        "encryptedData",
    ),
    # unsupported algorithms
    "A128GCM": (
        lambda key: _sealed(key, b"{}", enc="A128GCM"),
        "UNSUPPORTED_JWE_ALGORITHM",
        "encryptedData",
    ),
    "ECDH-ES+A256KW": (
        lambda key: _sealed(key, b"{}", alg="ECDH-ES+A256KW"),
        "UNSUPPORTED_JWE_ALGORITHM",
        "encryptedData",
    ),
    "RSA-OAEP-256": (
        lambda key: jwe.encrypt_compact(
            {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": key.kid},
            b"{}",
            RSAKey.generate_key(2048),
            algorithms=["RSA-OAEP-256", "A256GCM"],
        ),
        "UNSUPPORTED_JWE_ALGORITHM",
        "encryptedData",
    ),
    "dir": (
        lambda key: jwe.encrypt_compact(
            {"alg": "dir", "enc": "A256GCM", "kid": key.kid},
            b"{}",
            OctKey.generate_key(256),
            algorithms=["dir", "A256GCM"],
        ),
        "UNSUPPORTED_JWE_ALGORITHM",
        "encryptedData",
    ),
    "P-384": (
        lambda key: _with_header(
            _card()(key), epk=ECKey.generate_key("P-384").as_dict(private=False)
        ),
        "UNSUPPORTED_JWE_ALGORITHM",
        "encryptedData",
    ),
    "zip": (
        lambda key: _with_header(_card()(key), zip="DEF"),
        "UNSUPPORTED_JWE_ALGORITHM",
        "encryptedData",
    ),
    # decrypted content that breaks its schema
    "array": (lambda key: _sealed(key, b"[1]"), "INVALID_JWE_CONTENT", "encryptedData"),
    "not-json": (lambda key: _sealed(key, PAN.encode()), "INVALID_JWE_CONTENT", "encryptedData"),
    "pan-too-short": (_card(pan="453991000"), "INVALID_JWE_CONTENT", "encryptedData.pan"),
    "pan-too-long": (_card(pan=PAN + "0000"), "INVALID_JWE_CONTENT", "encryptedData.pan"),
    "pan-letters": (_card(pan=PAN[:-2] + "AB"), "INVALID_JWE_CONTENT", "encryptedData.pan"),
    "pan-not-luhn": (_card(pan=NOT_LUHN), "INVALID_JWE_CONTENT", "encryptedData.pan"),
    "no-pan": (
        lambda key: encrypt_fields({"exp": "2911"}, key),
        "INVALID_JWE_CONTENT",
        "encryptedData.pan",
    ),
    "month-13": (_card(exp="2913"), "INVALID_JWE_CONTENT", "encryptedData.exp"),
    "month-00": (_card(exp="2900"), "INVALID_JWE_CONTENT", "encryptedData.exp"),
    "exp-mmyyyy": (_card(exp="112029"), "INVALID_JWE_CONTENT", "encryptedData.exp"),
    "csc-letters": (_card(cvv2="12a"), "INVALID_JWE_CONTENT", "encryptedData.cvv2"),
}
CLEAR_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "pan": ({"pan": PAN}, "pan"),
    "trackData": ({"trackData": {"track2": f"{PAN}=2911"}}, "trackData"),
    "cvv2": ({"cvv2": "987"}, "cvv2"),
    "nested": ({"cardDesign": {"cardImage": "BLUE", "pan": PAN}}, "cardDesign.pan"),
}


@pytest.fixture
def issuer(http: httpx.Client) -> IssuerClient:
    return IssuerClient(http)


def _key(issuer: IssuerClient) -> ECKey:
    return ECKey.import_key(issuer.jwks["keys"][0])


def _assert_refusal(body: dict[str, Any], code: str, field: str, sent: Any) -> None:
    assert (body["errorCode"], body["field"]) == (code, field), body
    text = json.dumps(body)
    for secret in (PAN, NOT_LUHN, PAN[6:12]):
        assert secret not in text
    if isinstance(sent, str) and len(sent) > 20:
        assert sent not in text  # not even the ciphertext is echoed


@pytest.mark.parametrize("name", CASES)
def test_each_failure_of_one_card_has_its_code(issuer: IssuerClient, name: str) -> None:
    make, code, field = CASES[name]
    sent = make(_key(issuer))

    answer = issuer.order(new_card_id(), order_body(sent))

    assert answer.status_code == 400, answer.text
    _assert_refusal(answer.json(), code, field, sent)


@pytest.mark.parametrize("name", CLEAR_FIELDS)
def test_card_data_beside_the_jwe_is_refused_as_clear_text(issuer: IssuerClient, name: str) -> None:
    change, field = CLEAR_FIELDS[name]
    body = order_body(issuer.encrypt())
    body.update(change)

    answer = issuer.order(new_card_id(), body)

    assert answer.status_code == 400, answer.text
    _assert_refusal(answer.json(), "SENSITIVE_DATA_NOT_ENCRYPTED", field, None)


def test_in_a_batch_each_card_gets_its_own_code_and_the_good_one_passes(
    issuer: IssuerClient,
) -> None:
    key = _key(issuer)
    names = list(CASES)
    sent = [CASES[name][0](key) for name in names]
    cards = [{"cardId": new_card_id(), **order_body(s)} for s in sent]
    cards.append({"cardId": new_card_id(), **order_body(issuer.encrypt())})

    answer = issuer.order_batch(cards)

    assert answer.status_code == 202, answer.text
    results = answer.json()["cards"]
    for index, name in enumerate(names):
        _, code, field = CASES[name]
        assert results[index]["errorCode"] == code, (name, results[index])
        assert results[index]["field"] == f"cards[{index}].{field}", name
    assert "operationId" in results[-1]
    for secret in (PAN, NOT_LUHN, PAN[6:12]):
        assert secret not in answer.text


@pytest.mark.parametrize("name", ["object", "unknown-kid", "zip", "pan-not-luhn", "tampered"])
def test_a_dry_run_reports_the_same_code(issuer: IssuerClient, name: str) -> None:
    make, code, field = CASES[name]
    sent = make(_key(issuer))

    answer = issuer.order(new_card_id(), order_body(sent), dryRun="true")

    assert answer.status_code == 400, answer.text
    _assert_refusal(answer.json(), code, field, sent)
