"""Operation ids: UUIDs of version 7, so new orders add to the right edge of their indexes."""

from __future__ import annotations

import re
import time
import uuid

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
