"""Sealing at rest: AES-256-GCM bound to its order by the associated data."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag

from issuance.security.sealing import NONCE_BYTES, open_sealed, seal

KEY = bytes(range(32))
CONTEXT = "order:DEMOBANK01:card-1"
PLAINTEXT = b'{"pan":"4539910012345676","cvv2":"123"}'


def test_what_is_sealed_opens_with_the_same_key_and_context() -> None:
    sealed = seal(PLAINTEXT, key=KEY, context=CONTEXT)

    assert open_sealed(sealed, key=KEY, context=CONTEXT) == PLAINTEXT


def test_the_sealed_form_is_nonce_ciphertext_and_tag_without_the_plaintext() -> None:
    sealed = seal(PLAINTEXT, key=KEY, context=CONTEXT)

    assert len(sealed) == NONCE_BYTES + len(PLAINTEXT) + 16
    assert b"4539910012345676" not in sealed


def test_sealing_twice_gives_different_blobs() -> None:
    assert seal(PLAINTEXT, key=KEY, context=CONTEXT) != seal(PLAINTEXT, key=KEY, context=CONTEXT)


def test_an_empty_plaintext_round_trips() -> None:
    assert open_sealed(seal(b"", key=KEY, context=CONTEXT), key=KEY, context=CONTEXT) == b""


@pytest.mark.parametrize(
    "context", ["order:DEMOBANK01:card-2", "order:OTHERBNK02:card-1", "", CONTEXT + " "]
)
def test_a_blob_does_not_open_in_another_context(context: str) -> None:
    sealed = seal(PLAINTEXT, key=KEY, context=CONTEXT)

    with pytest.raises(InvalidTag):
        open_sealed(sealed, key=KEY, context=context)


def test_a_blob_does_not_open_with_another_key() -> None:
    sealed = seal(PLAINTEXT, key=KEY, context=CONTEXT)

    with pytest.raises(InvalidTag):
        open_sealed(sealed, key=os.urandom(32), context=CONTEXT)


@pytest.mark.parametrize("index", [0, NONCE_BYTES, -1], ids=["nonce", "ciphertext", "tag"])
def test_a_tampered_blob_does_not_open(index: int) -> None:
    sealed = bytearray(seal(PLAINTEXT, key=KEY, context=CONTEXT))
    sealed[index] ^= 0x01

    with pytest.raises(InvalidTag):
        open_sealed(bytes(sealed), key=KEY, context=CONTEXT)
