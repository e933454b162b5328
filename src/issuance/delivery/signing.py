"""Standard Webhooks signatures (webhook-id, webhook-timestamp, webhook-signature).

The signed content is `{id}.{timestamp}.{body}`; the signature is HMAC-SHA256 with the secret's
bytes (the base64 after `whsec_`), written `v1,<base64>`. During a rotation two secrets are
active and the header carries both signatures, space-separated: a receiver holding either
verifies the message.
"""

from __future__ import annotations

import base64
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret: decode it once per endpoint, not once per POST."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))  # padding is optional


def sign(keys: tuple[bytes, ...], *, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,<base64>` per key, space-separated."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.digest(k, signed, "sha256")).decode() for k in keys
    )


def signature(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    return sign((key(secret),), message_id=message_id, timestamp=timestamp, body=body)


def signature_headers(
    secrets: tuple[str, ...], *, message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers (no signature header without a secret)."""
    return keyed_headers(
        tuple(key(s) for s in secrets), message_id=message_id, timestamp=timestamp, body=body
    )


def keyed_headers(
    keys: tuple[bytes, ...], *, message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    headers = {"webhook-id": message_id, "webhook-timestamp": str(timestamp)}
    if keys:
        headers["webhook-signature"] = sign(
            keys, message_id=message_id, timestamp=timestamp, body=body
        )
    return headers
