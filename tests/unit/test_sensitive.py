"""The decrypted card data: Luhn, lengths, YYMM months, CSC formats; errors never echo the PAN."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from issuance.contract.sensitive import SensitiveCardData, luhn_ok
from tests.unit.builders import luhn_check_digit, pan_in

VALID = "4539910012345676"  # hand-checked; 45399100 is DEMO-DEBIT's range


def card(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"pan": VALID, "exp": "2911", "name": "ADA LOVELACE", "cvv2": "123"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def refusal(data: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        SensitiveCardData.model_validate(data)
    return raised.value


def rendered_errors(error: ValidationError) -> str:
    return json.dumps(error.errors(include_input=False, include_url=False), default=str)


@pytest.mark.parametrize(
    "number",
    [
        "4539910012345676",
        "4111111111111111",
        "5555555555554444",
        "378282246310005",  # Amex, 15 digits
        "6011111111111117",
        "79927398713",  # the textbook example
        "0000000000",
    ],
)
def test_luhn_accepts_known_valid_numbers(number: str) -> None:
    assert luhn_ok(number)


@pytest.mark.parametrize(
    "number",
    ["4539910012345671", "4111111111111112", "79927398710", "378282246310006", "1234567812345678"],
)
def test_luhn_refuses_known_invalid_numbers(number: str) -> None:
    assert not luhn_ok(number)


def test_luhn_catches_every_single_digit_error() -> None:
    for position in range(len(VALID)):
        for digit in "0123456789":
            if digit != VALID[position]:
                altered = VALID[:position] + digit + VALID[position + 1 :]
                assert not luhn_ok(altered), altered


def test_the_test_builder_check_digit_agrees_with_luhn_ok() -> None:
    assert luhn_check_digit("453991001234567") == "6"
    assert all(luhn_ok(pan_in("45399100", length=n)) for n in range(10, 20))


def test_valid_card_data_is_read_from_camel_case() -> None:
    data = SensitiveCardData.model_validate(
        card(
            panSequenceNumber="01",
            effectiveDate="2411",
            secondName="BYRON",
            trackData={"track2": "4539910012345676=29111010000000000000"},
        )
    )

    assert data.pan == VALID
    assert data.exp == "2911"
    assert data.pan_sequence_number == "01"
    assert data.second_name == "BYRON"
    assert data.track_data is not None
    assert data.track_data.track2 is not None


@pytest.mark.parametrize(
    "pan",
    [
        pan_in("4", length=9),
        pan_in("4", length=20),
        "4539 9100 1234 5676",
        "453991001234567O",  # letter O
        "",
    ],
)
def test_a_pan_of_bad_length_or_characters_is_refused(pan: str) -> None:
    error = refusal(card(pan=pan))

    [problem] = error.errors(include_input=False)
    assert problem["loc"] == ("pan",)
    assert problem["type"] == "string_pattern_mismatch"


@pytest.mark.parametrize("length", [10, 13, 16, 19])
def test_a_luhn_pan_of_10_to_19_digits_is_accepted(length: int) -> None:
    pan = pan_in("45399100", length=length)

    assert SensitiveCardData.model_validate(card(pan=pan)).pan == pan


@pytest.mark.parametrize("pan", ["4539910012345671", "4111111111111112", "4539910012345607"])
def test_a_pan_failing_luhn_is_refused(pan: str) -> None:
    error = refusal(card(pan=pan))

    [problem] = error.errors(include_input=False)
    assert problem["loc"] == ("pan",)
    assert "fails the Luhn check" in problem["msg"]


@pytest.mark.parametrize("exp", ["2913", "2900", "2999", "291", "29-11", "11/29", "291A", "202911"])
def test_a_bad_expiry_is_refused(exp: str) -> None:
    error = refusal(card(exp=exp))

    [problem] = error.errors(include_input=False)
    assert problem["loc"] == ("exp",)


@pytest.mark.parametrize("exp", ["2901", "2912", "0001"])
def test_an_expiry_with_month_01_to_12_is_accepted(exp: str) -> None:
    assert SensitiveCardData.model_validate(card(exp=exp)).exp == exp


def test_a_bad_effective_date_month_is_refused() -> None:
    error = refusal(card(effectiveDate="2413"))

    assert [p["loc"] for p in error.errors()] == [("effectiveDate",)]


@pytest.mark.parametrize("cvv2", ["12", "12345", "12a", " 123", ""])
def test_a_bad_cvv2_is_refused(cvv2: str) -> None:
    error = refusal(card(cvv2=cvv2))

    assert [p["loc"] for p in error.errors()] == [("cvv2",)]


@pytest.mark.parametrize("cvv2", ["123", "0000"])
def test_a_cvv2_of_3_or_4_digits_is_accepted(cvv2: str) -> None:
    assert SensitiveCardData.model_validate(card(cvv2=cvv2)).cvv2 == cvv2


def test_missing_pan_and_expiry_are_both_reported() -> None:
    error = refusal({"name": "ADA"})

    assert {(p["loc"], p["type"]) for p in error.errors()} == {
        (("pan",), "missing"),
        (("exp",), "missing"),
    }


def test_unknown_fields_are_refused_by_name() -> None:
    error = refusal(card(pin="1234"))

    assert [(p["loc"], p["type"]) for p in error.errors()] == [(("pin",), "extra_forbidden")]


@pytest.mark.parametrize(
    "pan",
    ["4539910012345671", "4539910012345", "45399100123456789012", "4539-9100-1234-5676"],
    ids=["luhn", "13-digits-luhn-fails", "too-long", "dashes"],
)
def test_validation_errors_without_input_never_contain_the_pan(pan: str) -> None:
    error = refusal(card(pan=pan, exp="2913", cvv2="1"))

    rendered = rendered_errors(error)

    assert "pan" in rendered  # the field is named...
    assert pan not in rendered  # ...its value is not
    assert pan.replace("-", "")[:10] not in rendered


def test_validation_errors_without_input_never_contain_the_cvv2() -> None:
    error = refusal(card(pan="4539910012345671", cvv2="98765"))

    assert "98765" not in rendered_errors(error)


@pytest.mark.parametrize("pan", ["4539910012345671", "45399100123456789012"])
def test_the_validation_error_text_never_contains_the_pan(pan: str) -> None:
    error = refusal(card(pan=pan))

    assert pan not in str(error)
    assert pan not in repr(error)
