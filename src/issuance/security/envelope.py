"""Envelope encryption at rest: a random data key per order, wrapped by a master key.

    blob = b"ENV1" | len(kid) | kid | len(wrapped) | wrapped data key | sealed plaintext

The plaintext is sealed (AES-256-GCM, `sealing.py`) with a fresh 32-byte data key; the data key
is sealed with the master key named by `kid`. Both are bound to the order by the context, so a
blob copied onto another order opens for neither. Rotating the master key re-wraps the 60-byte
data key and leaves the sealed plaintext untouched; purging nulls the blob, and the data key
goes with it.

Blobs written before envelopes (sealed directly with a key of `data-keys.json`) have no header;
they open with the key their row names, and `rewrap` turns them into envelopes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from issuance.security.sealing import open_sealed, seal

MAGIC = b"ENV1"
DATA_KEY_BYTES = 32  # AES-256


class UnreadableSealedData(Exception):
    """The blob names a master key we do not hold, or does not open (tampered, other order)."""


@dataclass(frozen=True)
class MasterKeys:
    """Master keys by id, in order: the first wraps new data keys, every one can unwrap."""

    keys: dict[str, bytes]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("at least one master key is needed")

    @property
    def wrapping_key_id(self) -> str:
        return next(iter(self.keys))

    def key(self, kid: str) -> bytes:
        try:
            return self.keys[kid]
        except KeyError:
            raise UnreadableSealedData(f"master key {kid!r} is not in the key ring") from None


def _wrap_context(context: str) -> str:
    return f"data-key:{context}"


def _pack(kid: str, wrapped: bytes, sealed: bytes) -> bytes:
    name = kid.encode()
    return (
        MAGIC
        + struct.pack(">B", len(name))
        + name
        + struct.pack(">H", len(wrapped))
        + wrapped
        + sealed
    )


def _unpack(blob: bytes) -> tuple[str, bytes, bytes]:
    try:
        (name_length,) = struct.unpack_from(">B", blob, len(MAGIC))
        start = len(MAGIC) + 1
        kid = blob[start : start + name_length].decode()
        (wrapped_length,) = struct.unpack_from(">H", blob, start + name_length)
        body = start + name_length + 2
    except (struct.error, UnicodeDecodeError):
        raise UnreadableSealedData("the envelope header is damaged") from None
    return kid, blob[body : body + wrapped_length], blob[body + wrapped_length :]


def is_envelope(blob: bytes) -> bool:
    return blob.startswith(MAGIC)


def wrapping_key_id(blob: bytes) -> str:
    """The id of the master key that wraps this blob's data key."""
    return _unpack(blob)[0]


def seal_envelope(plaintext: bytes, *, masters: MasterKeys, context: str) -> bytes:
    """Seal under a new data key, itself wrapped by the current master key."""
    data_key = os.urandom(DATA_KEY_BYTES)
    kid = masters.wrapping_key_id
    wrapped = seal(data_key, key=masters.key(kid), context=_wrap_context(context))
    return _pack(kid, wrapped, seal(plaintext, key=data_key, context=context))


def _data_key(blob: bytes, masters: MasterKeys, context: str) -> tuple[bytes, bytes]:
    kid, wrapped, sealed = _unpack(blob)
    try:
        return open_sealed(wrapped, key=masters.key(kid), context=_wrap_context(context)), sealed
    except InvalidTag:
        raise UnreadableSealedData("the data key does not unwrap") from None


def open_envelope(
    blob: bytes, *, masters: MasterKeys, context: str, legacy_key_id: str | None = None
) -> bytes:
    """The plaintext; a pre-envelope blob opens with the master key `legacy_key_id`."""
    try:
        if not is_envelope(blob):
            return open_sealed(blob, key=masters.key(legacy_key_id or ""), context=context)
        data_key, sealed = _data_key(blob, masters, context)
        return open_sealed(sealed, key=data_key, context=context)
    except InvalidTag:
        raise UnreadableSealedData("the sealed data does not open") from None


def rewrap(
    blob: bytes, *, masters: MasterKeys, context: str, legacy_key_id: str | None = None
) -> bytes:
    """The same sealed data with its data key wrapped by the current master key.

    The plaintext is not decrypted (except for a pre-envelope blob, which gets its own data key
    now): rotation handles 60 bytes per order, whatever the size of its data.
    """
    if not is_envelope(blob):
        plaintext = open_envelope(
            blob, masters=masters, context=context, legacy_key_id=legacy_key_id
        )
        return seal_envelope(plaintext, masters=masters, context=context)
    data_key, sealed = _data_key(blob, masters, context)
    kid = masters.wrapping_key_id
    wrapped = seal(data_key, key=masters.key(kid), context=_wrap_context(context))
    return _pack(kid, wrapped, sealed)
