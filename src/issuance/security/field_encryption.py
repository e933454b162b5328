"""`encryptedData`: compact JWE carrying PAN, expiry, CSC and the other sensitive fields.

D1 documents one JWE configuration for sensitive data: `alg=ECDH-ES` (direct key agreement),
`enc=A256GCM`, an EC P-256 recipient key named by `kid`. Nothing else is accepted, and the
header is checked before any key is touched. Each failure has its own code, names the field and
never echoes the value:

    SENSITIVE_DATA_NOT_ENCRYPTED  card data in clear (JSON, a PAN) where the JWE belongs
    INVALID_JWE                   not a compact JWE, or it does not decrypt (tampered, other key)
    UNSUPPORTED_JWE_ALGORITHM     another alg, enc or curve, or compression (`zip`)
    UNKNOWN_JWE_KEY               `kid` names none of the platform's active keys
    INVALID_JWE_CONTENT           decrypts to something else than a JSON object
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from issuance.domain.errors import InvalidRequest

ALGORITHM = "ECDH-ES"
ENCRYPTION = "A256GCM"
CURVE = "P-256"
_BASE64URL_PARTS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+){3}$")
_CLEAR_CARD_NUMBER = re.compile(r"\d{12,}")  # looked for only in what is not a JWE


def _refuse(message: str, field: str, code: str) -> InvalidRequest:
    return InvalidRequest(message, field=field, code=code)


def _compact_header(token: str) -> dict[str, Any] | None:
    """The protected header of a token shaped like a compact JWE, else None."""
    if not _BASE64URL_PARTS.match(token):
        return None
    head = token.split(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):  # UnicodeDecodeError included
        return None
    return header if isinstance(header, dict) else None


def _header(token: str, field: str) -> dict[str, Any]:
    header = _compact_header(token)
    if header is not None:
        return header
    if token.lstrip().startswith(("{", "[")) or _CLEAR_CARD_NUMBER.search(token):
        raise _refuse(
            "must be a compact JWE: card data is never accepted in clear",
            field,
            "SENSITIVE_DATA_NOT_ENCRYPTED",
        )
    raise _refuse("is not a compact JWE", field, "INVALID_JWE")


def _check_algorithms(header: dict[str, Any], field: str) -> None:
    epk = header.get("epk")
    curve = epk.get("crv") if isinstance(epk, dict) else None
    if (
        header.get("alg") != ALGORITHM
        or header.get("enc") != ENCRYPTION
        or "zip" in header
        or (epk is not None and (curve != CURVE or epk.get("kty") != "EC"))
    ):
        raise _refuse(
            f"must use alg {ALGORITHM} with enc {ENCRYPTION} on curve {CURVE}, uncompressed",
            field,
            "UNSUPPORTED_JWE_ALGORITHM",
        )


def decrypt_fields(token: str, keys: KeySet, *, field: str = "encryptedData") -> dict[str, Any]:
    """Decrypt a compact JWE into its JSON object, or raise a precise `InvalidRequest`."""
    header = _header(token, field)
    _check_algorithms(header, field)
    kid = header.get("kid")
    if not isinstance(kid, str) or not any(key.kid == kid for key in keys):
        raise _refuse("is encrypted for an unknown key id (kid)", field, "UNKNOWN_JWE_KEY")
    try:
        plaintext = jwe.decrypt_compact(token, keys, algorithms=[ALGORITHM, ENCRYPTION]).plaintext
    except (JoseError, ValueError, TypeError, KeyError):
        raise _refuse("could not be decrypted", field, "INVALID_JWE") from None
    try:
        content = json.loads(plaintext or b"")
    except ValueError:  # UnicodeDecodeError included
        content = None
    if not isinstance(content, dict):
        raise _refuse("must decrypt to a JSON object", field, "INVALID_JWE_CONTENT")
    return content


def encrypt_fields(fields: dict[str, Any], public_key: ECKey | dict[str, Any]) -> str:
    """Encrypt `fields` for the holder of `public_key` (what an issuer backend does)."""
    key = public_key if isinstance(public_key, ECKey) else ECKey.import_key(public_key)
    header = {"alg": ALGORITHM, "enc": ENCRYPTION, "kid": key.kid}
    return jwe.encrypt_compact(header, json.dumps(fields).encode(), key)
