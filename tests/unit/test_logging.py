"""Log redaction: PANs masked to first 6 / last 4, sensitive keys dropped at any depth."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest
import structlog

from issuance.contract.sensitive import luhn_ok, mask_pans
from issuance.logging import (
    MAX_LOGGED_DEPTH,
    SENSITIVE_KEYS,
    TOO_DEEP,
    configure_logging,
    redact,
)
from issuance.settings import Settings
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


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"next": value}
    return value


def test_nesting_deeper_than_the_cap_is_replaced_and_never_overflows_the_stack() -> None:
    out = redacted({"event": "x", "request_body": _nested(sys.getrecursionlimit() * 2, PAN)})

    level, kept = out["request_body"], 0
    while isinstance(level, dict | list):
        level = level["next"] if isinstance(level, dict) else level[0]
        kept += 1
    assert (kept, level) == (MAX_LOGGED_DEPTH, TOO_DEEP)


def test_nesting_within_the_cap_is_kept_and_still_masked() -> None:
    out = redacted({"event": "x", "request_body": _nested(MAX_LOGGED_DEPTH - 1, PAN)})

    rendered = json.dumps(out)
    assert TOO_DEEP not in rendered
    assert PAN not in rendered
    assert "453991******5676" in rendered


def test_values_that_are_not_text_pass_through() -> None:
    event = {"event": "x", "attempt": 3, "ok": True, "ratio": 0.5, "nothing": None}

    assert redacted(event) == event


def test_redact_changes_the_event_in_place_and_returns_it() -> None:
    event: dict[str, Any] = {"event": PAN, "pan": PAN}

    returned = redact(None, "info", event)

    assert returned is event
    assert event == {"event": "453991******5676", "pan": "[REDACTED]"}


@pytest.mark.parametrize(
    "key", ["iccData", "chip_data", "EMVData", "pinBlock", "csc", "cvc2", "track3", "exp"]
)
def test_chip_data_csc_and_tracks_are_dropped_by_any_name(key: str) -> None:
    assert redacted({"event": "x", "card": {key: "9F2608A1B2C3D4"}})["card"][key] == "[REDACTED]"


@pytest.mark.parametrize(
    "text", ["4539 9100 1234 5676", "4539-9100-1234-5676", "card 5412 7500 0000 0 ok"]
)
def test_a_pan_written_in_groups_is_masked(text: str) -> None:
    digits = "".join(c for c in text if c.isdigit())

    masked = mask_pans(text)

    assert digits not in masked.replace(" ", "").replace("-", "")
    assert digits[:6] in masked.replace(" ", "").replace("-", "")


def test_dates_and_phone_numbers_in_groups_stay_readable() -> None:
    for text in ("2025-01-17 06:28", "+33 1 23 45 67 89", "order 1234 567 890"):
        assert mask_pans(text) == text


def test_other_libraries_records_go_through_the_same_redaction(
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json_output=True)
    try:
        raise ValueError(f"declined {PAN}")
    except ValueError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved: %s", PAN)

    _out, err = capfd.readouterr()
    assert "453991******5676" in err
    assert PAN not in err
    line = json.loads(next(x for x in err.splitlines() if "never retrieved" in x))
    assert line["level"] == "error"
    assert "ValueError" in line["exception"]


def test_our_lines_are_masked_whatever_was_bound_and_carry_level_and_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json_output=True)
    with structlog.contextvars.bound_contextvars(note=f"card {PAN}", cvv2="123"):
        structlog.get_logger("t").warning("declined", detail={"pan": PAN}, text=PAN, attempt=2)

    out, _err = capsys.readouterr()
    line = json.loads(out.strip().splitlines()[-1])
    assert PAN not in out
    assert line["note"] == "card 453991******5676"
    assert line["cvv2"] == "[REDACTED]"
    assert line["detail"] == {"pan": "[REDACTED]"}
    assert line["text"] == "453991******5676"
    assert line["attempt"] == 2
    assert line["level"] == "warning"
    assert line["timestamp"].endswith("Z")


def test_configuring_twice_leaves_one_redacting_handler() -> None:
    configure_logging(json_output=False)
    configure_logging(json_output=True)  # the set-up the rest of the suite expects

    names = [h.get_name() for h in logging.getLogger().handlers]
    assert names.count("issuance-redacting") == 1


@pytest.mark.parametrize(
    ("setting", "terminal", "expected"),
    [(None, True, False), (None, False, True), (True, True, True), (False, False, False)],
)
def test_logs_are_json_unless_a_person_reads_them(
    monkeypatch: pytest.MonkeyPatch, setting: bool | None, terminal: bool, expected: bool
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)

    assert Settings(log_json=setting).json_logs is expected
