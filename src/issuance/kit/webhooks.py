"""Checking a Standard Webhooks signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`).

The signed content is `{id}.{timestamp}.{body}`, HMAC-SHA256 with the bytes of a `whsec_`
secret, sent as `v1,<base64>`; several space-separated signatures may come at once (the sender
signs with both secrets during a rotation), and one match with any configured secret is enough.
The timestamp must be within `tolerance` of now, so a captured message cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
TOLERANCE = 300.0  # seconds between the sender's clock and ours, either way


class SignatureRejected(Exception):
    """The message is not proven to come from the platform; the reason is safe to answer."""


def secret_bytes(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a signing secret must be whsec_ followed by base64") from None


def _expected(key: bytes, message_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def _signatures(header: str) -> list[bytes]:
    found = []
    for item in header.split():
        version, _, value = item.partition(",")
        if version == "v1":
            try:
                found.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
    return found


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    keys: Sequence[bytes],
    now: float,
    tolerance: float = TOLERANCE,
) -> str:
    """The message's `webhook-id` when it is signed with one of `keys` and fresh; else raise."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signature = headers.get("webhook-signature", "")
    if not message_id or not timestamp or not signature:
        raise SignatureRejected("webhook-id, webhook-timestamp and webhook-signature are required")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureRejected("webhook-timestamp must be whole seconds since the epoch")
    if abs(now - int(timestamp)) > tolerance:
        raise SignatureRejected("webhook-timestamp is outside the accepted window")
    offered = _signatures(signature)
    for key in keys:
        expected = _expected(key, message_id, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return message_id
    raise SignatureRejected("no valid webhook-signature")
