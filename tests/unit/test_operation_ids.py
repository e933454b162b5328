"""Ids we make: operation ids are UUIDs of version 7, so new orders add to the right edge of
their indexes; none of them, nor our hex ids, is one that logs would show masked."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable

import pytest

from issuance.contract.sensitive import unmasked, unmasked_hex_id
from issuance.platform import new_operation_id


def test_an_operation_id_is_a_version_7_uuid_within_d1s_pattern() -> None:
    operation_id = new_operation_id()

    parsed = uuid.UUID(operation_id)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == operation_id
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", operation_id)


def test_it_carries_the_millisecond_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    operation_id = new_operation_id()
    after = time.time_ns() // 1_000_000

    assert before <= uuid.UUID(operation_id).int >> 80 <= after


def test_ids_made_in_later_milliseconds_sort_after_as_text() -> None:
    made = []
    for _ in range(5):
        made.append(new_operation_id())
        time.sleep(0.002)

    assert made == sorted(made)


def test_ids_made_in_the_same_millisecond_are_still_distinct() -> None:
    made = [new_operation_id() for _ in range(20_000)]

    assert len(set(made)) == len(made)


def _draws(*first: bytes) -> Callable[[int], bytes]:
    """os.urandom giving `first` in turn, then real randomness."""
    queued = list(first)
    real = os.urandom
    return lambda size: queued.pop(0) if queued else real(size)


def test_an_id_the_log_masking_would_alter_is_drawn_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Random bits of zero end the id in `-000000000000`: twelve digits passing the Luhn check,
    which logs would show as `********0000`."""
    monkeypatch.setattr(os, "urandom", _draws(bytes(10)))
    assert not unmasked(str(uuid.UUID(int=0x7 << 76 | 0b10 << 62)))

    operation_id = new_operation_id()

    assert unmasked(operation_id)
    assert not operation_id.endswith("-000000000000")


def test_hex_ids_the_log_masking_would_alter_are_drawn_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    zeros = bytes(16)  # uuid4's hex: 32 digits but two, a run that reads as a PAN
    monkeypatch.setattr(os, "urandom", _draws(zeros, zeros))
    assert not unmasked(uuid.UUID(bytes=zeros, version=4).hex)

    made = unmasked_hex_id()

    assert unmasked(made)
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert made != uuid.UUID(bytes=zeros, version=4).hex
