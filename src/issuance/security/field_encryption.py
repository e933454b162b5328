"""`encryptedData`: compact JWE carrying PAN, expiry, CSC and the other sensitive fields.

D1 accepts exactly `alg=ECDH-ES` with `enc=A256GCM` on an EC P-256 key chosen by `kid`; anything
else is refused before any key is touched. Errors name the field and never include the value.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from issuance.domain.errors import InvalidRequest

ALGORITHM = "ECDH-ES"
ENCRYPTION = "A256GCM"


def _header(token: str, field: str) -> dict[str, Any]:
    try:
        head = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or token.count(".") != 4:
        raise InvalidRequest("is not a compact JWE", field=field, code="INVALID_JWE")
    return header


def decrypt_fields(token: str, keys: KeySet, *, field: str = "encryptedData") -> dict[str, Any]:
    """Decrypt a compact JWE into its JSON object, or raise a precise `InvalidRequest`."""
    header = _header(token, field)
    if header.get("alg") != ALGORITHM or header.get("enc") != ENCRYPTION:
        raise InvalidRequest(
            f"must use alg {ALGORITHM} with enc {ENCRYPTION}",
            field=field,
            code="UNSUPPORTED_JWE_ALGORITHM",
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not any(key.kid == kid for key in keys):
        raise InvalidRequest(
            "is encrypted for an unknown key id (kid)", field=field, code="UNKNOWN_JWE_KEY"
        )
    try:
        plaintext = jwe.decrypt_compact(token, keys, algorithms=[ALGORITHM, ENCRYPTION]).plaintext
    except (JoseError, ValueError):
        raise InvalidRequest("could not be decrypted", field=field, code="INVALID_JWE") from None
    try:
        content = json.loads(plaintext or b"")
    except ValueError:  # UnicodeDecodeError included
        content = None
    if not isinstance(content, dict):
        raise InvalidRequest(
            "must decrypt to a JSON object", field=field, code="INVALID_JWE_CONTENT"
        )
    return content


def encrypt_fields(fields: dict[str, Any], public_key: ECKey | dict[str, Any]) -> str:
    """Encrypt `fields` for the holder of `public_key` (what an issuer backend does)."""
    key = public_key if isinstance(public_key, ECKey) else ECKey.import_key(public_key)
    header = {"alg": ALGORITHM, "enc": ENCRYPTION, "kid": key.kid}
    return jwe.encrypt_compact(header, json.dumps(fields).encode(), key)
