"""Sealing sensitive data at rest with AES-256-GCM.

The sealed form is `nonce (12 bytes) || ciphertext+tag`, stored with the id of the key that sealed
it, and bound to the order it belongs to through the associated data: a sealed blob copied onto
another order does not open.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def seal(plaintext: bytes, *, key: bytes, context: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())


def open_sealed(sealed: bytes, *, key: bytes, context: str) -> bytes:
    nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    return AESGCM(key).decrypt(nonce, body, context.encode())
