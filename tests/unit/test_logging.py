"""Log redaction: PANs masked to first 6 / last 4, sensitive keys dropped at any depth."""

from __future__ import annotations

import json
from typing import Any

import pytest

from issuance.contract.sensitive import luhn_ok
from issuance.logging import SENSITIVE_KEYS, mask_pans, redact
from tests.unit.builders import pan_in

PAN = "4539910012345676"


def redacted(event: dict[str, Any]) -> dict[str, Any]:
    return dict(redact(None, "info", dict(event)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PAN, "453991******5676"),
        (f"card {PAN} accepted", "card 453991******5676 accepted"),
        (f"pan={PAN};", "pan=453991******5676;"),
        ("5412750000000", "541275***0000"),  # 13 digits
        ("4539910012345678901", "453991*********8901"),  # 19 digits
        (f"{PAN},{PAN}", "453991******5676,453991******5676"),
        (f"x{PAN}y", "x453991******5676y"),
    ],
)
def test_mask_pans_keeps_first_6_and_last_4(text: str, expected: str) -> None:
    assert mask_pans(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 123456 for 2 cards",
        "2025-01-17T06:28:02.492Z",
        "453991******5676",  # already masked
        "op-9f86d081884c7d659a2feaa0c55ad015",
        "",
    ],
)
def test_mask_pans_leaves_text_without_pans_alone(text: str) -> None:
    assert mask_pans(text) == text


def test_masking_is_idempotent() -> None:
    once = mask_pans(f"card {PAN}")

    assert mask_pans(once) == once


@pytest.mark.parametrize("length", [10, 11, 12])
def test_a_short_luhn_pan_keeps_only_its_last_four(length: int) -> None:
    pan = pan_in("453991", length=length)

    output = mask_pans(f"pan {pan} refused")

    assert output == f"pan {'*' * (length - 4)}{pan[-4:]} refused"


@pytest.mark.parametrize("number", ["1234567891", "202501170628"])
def test_a_short_number_that_fails_luhn_stays_readable(number: str) -> None:
    assert not luhn_ok(number)

    assert mask_pans(f"ref {number}") == f"ref {number}"


def test_a_pan_run_together_with_its_expiry_is_masked() -> None:
    output = mask_pans(f"data {PAN}2911")

    assert PAN not in output


@pytest.mark.parametrize("key", sorted(SENSITIVE_KEYS))
def test_each_sensitive_top_level_key_is_redacted(key: str) -> None:
    assert redacted({key: "value"}) == {key: "[REDACTED]"}


@pytest.mark.parametrize("key", ["PAN", "Cvv2", "encryptedData", "trackData", "Authorization"])
def test_sensitive_keys_are_matched_without_regard_to_case(key: str) -> None:
    assert redacted({"event": "x", key: "value"})[key] == "[REDACTED]"


def test_sensitive_keys_are_redacted_at_any_depth() -> None:
    event = {
        "event": "order received",
        "request": {
            "cardProductId": "DEMO-DEBIT",
            "encryptedData": "eyJhbGciOiJFQ0RILUVTIn0...",
            "cards": [
                {"card": {"pan": PAN, "cvv2": "123", "trackData": {"track2": "x"}}},
                ({"secret": "s3cret", "nested": [{"track1": "%B"}]},),
            ],
        },
    }

    out = redacted(event)

    assert out["request"]["cardProductId"] == "DEMO-DEBIT"
    assert out["request"]["encryptedData"] == "[REDACTED]"
    first, [second] = out["request"]["cards"]
    assert first == {"card": {"pan": "[REDACTED]", "cvv2": "[REDACTED]", "trackData": "[REDACTED]"}}
    assert second == {"secret": "[REDACTED]", "nested": [{"track1": "[REDACTED]"}]}
    rendered = json.dumps(out)
    for value in (PAN, "123", "s3cret", "eyJhbGci"):
        assert value not in rendered


def test_pans_in_ordinary_values_are_masked_at_any_depth() -> None:
    event = {"event": f"declined {PAN}", "detail": {"notes": [f"see {PAN}"], "count": 3}}

    out = redacted(event)

    assert out == {
        "event": "declined 453991******5676",
        "detail": {"notes": ["see 453991******5676"], "count": 3},
    }


def test_values_that_are_not_text_pass_through() -> None:
    event = {"event": "x", "attempt": 3, "ok": True, "ratio": 0.5, "nothing": None}

    assert redacted(event) == event


def test_redact_changes_the_event_in_place_and_returns_it() -> None:
    event: dict[str, Any] = {"event": PAN, "pan": PAN}

    returned = redact(None, "info", event)

    assert returned is event
    assert event == {"event": "453991******5676", "pan": "[REDACTED]"}
