"""Standard Webhooks signatures (webhook-id, webhook-timestamp, webhook-signature).

The signed content is `{id}.{timestamp}.{body}`; the signature is HMAC-SHA256 with the secret's
bytes (the base64 after `whsec_`), written `v1,<base64>`. During a rotation two secrets are
active and the header carries both signatures, space-separated: a receiver holding either
verifies the message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))  # padding is optional


def signature(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    secrets: tuple[str, ...], *, message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers (no signature header without a secret)."""
    headers = {"webhook-id": message_id, "webhook-timestamp": str(timestamp)}
    if secrets:
        headers["webhook-signature"] = " ".join(
            signature(secret, message_id=message_id, timestamp=timestamp, body=body)
            for secret in secrets
        )
    return headers
