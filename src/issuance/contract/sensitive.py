"""What `encryptedData` holds once decrypted: PAN, expiry, names, CSC and track overrides.

These fields exist only between decryption and sealing; their validation errors name the field
and never echo the value.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from issuance.contract.common import WireModel


def luhn_ok(pan: str) -> bool:
    """The mod-10 check every payment card number satisfies."""
    total = 0
    for index, char in enumerate(reversed(pan)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _luhn(pan: str) -> str:
    if not luhn_ok(pan):
        raise ValueError("fails the Luhn check")
    return pan


def _month(yymm: str) -> str:
    if not 1 <= int(yymm[2:]) <= 12:
        raise ValueError("must be YYMM with a month from 01 to 12")
    return yymm


Pan = Annotated[str, StringConstraints(pattern=r"^[0-9]{10,19}$"), AfterValidator(_luhn)]
YearMonth = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$"), AfterValidator(_month)]


class TrackData(WireModel):
    """Full track values to encode as they are (otherwise the bureau computes them)."""

    track1: Annotated[str, StringConstraints(min_length=1, max_length=79)] | None = None
    track2: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    track3: Annotated[str, StringConstraints(min_length=1, max_length=107)] | None = None


class SensitiveCardData(WireModel):
    pan: Pan
    exp: YearMonth
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    second_name: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    encoded_name: Annotated[str, StringConstraints(min_length=2, max_length=26)] | None = None
    cvv1: Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")] | None = None
    cvv2: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}$")] | None = None
    pvv: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")] | None = None
    payment_account_reference: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{29}$")] | None
    ) = None
    pan_sequence_number: Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")] | None = None
    effective_date: YearMonth | None = None
    track_data: TrackData | None = None
