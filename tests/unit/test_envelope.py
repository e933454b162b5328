"""Envelope encryption: a data key per blob, wrapped by a master key; re-wrap; legacy blobs."""

from __future__ import annotations

import os

import pytest

from issuance.security.envelope import (
    MAGIC,
    MasterKeys,
    UnreadableSealedData,
    is_envelope,
    open_envelope,
    rewrap,
    seal_envelope,
    wrapping_key_id,
)
from issuance.security.sealing import seal

OLD = MasterKeys({"master-1": os.urandom(32)})
ROTATED = MasterKeys({"master-2": os.urandom(32), **OLD.keys})
CONTEXT = "order:DEMOBANK01:card-1"
PLAINTEXT = b'{"pan":"4539910012345676","cvv2":"123"}'


def test_what_is_sealed_opens_with_the_master_keys_and_context() -> None:
    blob = seal_envelope(PLAINTEXT, masters=OLD, context=CONTEXT)

    assert is_envelope(blob)
    assert wrapping_key_id(blob) == "master-1"
    assert open_envelope(blob, masters=OLD, context=CONTEXT) == PLAINTEXT
    assert b"4539910012345676" not in blob


def test_each_blob_has_its_own_data_key() -> None:
    one = seal_envelope(PLAINTEXT, masters=OLD, context=CONTEXT)
    two = seal_envelope(PLAINTEXT, masters=OLD, context=CONTEXT)

    header = len(MAGIC) + 1 + len("master-1") + 2
    wrapped = 12 + 32 + 16  # nonce, data key, tag
    assert one[header : header + wrapped] != two[header : header + wrapped]


def test_the_first_master_key_wraps() -> None:
    assert wrapping_key_id(seal_envelope(PLAINTEXT, masters=ROTATED, context=CONTEXT)) == "master-2"


def test_rewrap_moves_the_data_key_under_the_new_master_and_keeps_the_data() -> None:
    blob = seal_envelope(PLAINTEXT, masters=OLD, context=CONTEXT)

    rewrapped = rewrap(blob, masters=ROTATED, context=CONTEXT)

    assert wrapping_key_id(rewrapped) == "master-2"
    assert rewrapped.endswith(blob[-(len(PLAINTEXT) + 28) :])  # the sealed data is untouched
    only_new = MasterKeys({"master-2": ROTATED.keys["master-2"]})
    assert open_envelope(rewrapped, masters=only_new, context=CONTEXT) == PLAINTEXT


def test_after_the_old_master_is_gone_an_unwrapped_blob_is_unreadable() -> None:
    blob = seal_envelope(PLAINTEXT, masters=OLD, context=CONTEXT)
    only_new = MasterKeys({"master-2": ROTATED.keys["master-2"]})

    with pytest.raises(UnreadableSealedData):
        open_envelope(blob, masters=only_new, context=CONTEXT)


@pytest.mark.parametrize("context", ["order:DEMOBANK01:card-2", "order:OTHERBNK02:card-1", ""])
def test_a_blob_copied_onto_another_order_does_not_open(context: str) -> None:
    blob = seal_envelope(PLAINTEXT, masters=OLD, context=CONTEXT)

    with pytest.raises(UnreadableSealedData):
        open_envelope(blob, masters=OLD, context=context)
    with pytest.raises(UnreadableSealedData):
        rewrap(blob, masters=ROTATED, context=context)


@pytest.mark.parametrize("index", [-1, -30, 20, 40], ids=["tag", "data", "wrapped", "wrapped2"])
def test_a_tampered_blob_does_not_open(index: int) -> None:
    blob = bytearray(seal_envelope(PLAINTEXT, masters=OLD, context=CONTEXT))
    blob[index] ^= 0x01

    with pytest.raises(UnreadableSealedData):
        open_envelope(bytes(blob), masters=OLD, context=CONTEXT)


def test_a_truncated_header_is_unreadable() -> None:
    with pytest.raises(UnreadableSealedData):
        open_envelope(MAGIC + b"\x40ab", masters=OLD, context=CONTEXT)


def test_a_legacy_blob_opens_with_the_key_its_row_names_and_rewraps_into_an_envelope() -> None:
    legacy_key = os.urandom(32)
    masters = MasterKeys({"master-2": os.urandom(32), "legacy-1": legacy_key})
    legacy = seal(PLAINTEXT, key=legacy_key, context=CONTEXT)

    assert open_envelope(legacy, masters=masters, context=CONTEXT, legacy_key_id="legacy-1") == (
        PLAINTEXT
    )
    converted = rewrap(legacy, masters=masters, context=CONTEXT, legacy_key_id="legacy-1")
    assert is_envelope(converted)
    assert wrapping_key_id(converted) == "master-2"
    assert open_envelope(converted, masters=masters, context=CONTEXT) == PLAINTEXT


def test_master_keys_cannot_be_empty() -> None:
    with pytest.raises(ValueError, match="master key"):
        MasterKeys({})
