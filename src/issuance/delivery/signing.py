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


def key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret: decode it once per endpoint, not once per POST."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))  # padding is optional


class Signer:
    """Signs with a set of secrets, their HMAC state keyed once: each message copies it, which
    spares the key schedule and OpenSSL's digest look-up on every POST."""

    __slots__ = ("_keyed",)

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._keyed = tuple(hmac.new(key(s), digestmod=hashlib.sha256) for s in secrets)

    def signature(self, *, message_id: str, timestamp: int, body: bytes) -> str:
        """The `webhook-signature` value: one `v1,<base64>` per secret, space-separated."""
        prefix = f"{message_id}.{timestamp}.".encode()
        signatures = []
        for keyed in self._keyed:
            mac = keyed.copy()
            mac.update(prefix)
            mac.update(body)
            signatures.append("v1," + base64.b64encode(mac.digest()).decode())
        return " ".join(signatures)

    def headers(self, *, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers (no signature header without a secret)."""
        headers = {"webhook-id": message_id, "webhook-timestamp": str(timestamp)}
        if self._keyed:
            headers["webhook-signature"] = self.signature(
                message_id=message_id, timestamp=timestamp, body=body
            )
        return headers


def signature(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    return Signer((secret,)).signature(message_id=message_id, timestamp=timestamp, body=body)


def signature_headers(
    secrets: tuple[str, ...], *, message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers (no signature header without a secret)."""
    return Signer(secrets).headers(message_id=message_id, timestamp=timestamp, body=body)
