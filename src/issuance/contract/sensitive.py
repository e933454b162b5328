"""What `encryptedData` holds once decrypted: PAN, expiry, names, CSC and track overrides.

These fields exist only between decryption and sealing; their validation errors name the field
and never echo the value.
"""

from __future__ import annotations

import re
import uuid
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


_DIGIT_RUN = re.compile(r"\d{10,}")
# What either pattern below needs somewhere: most text has neither, and one search is cheaper
# than two substitutions (the access log masks every line).
_MAYBE_PAN = re.compile(r"\d{10}|\d{4}[ -]\d")
# A PAN written in groups, "4539 9100 1234 5676" or "3782-822463-10005": masked when the groups
# hold 13 to 19 digits in all (a date such as "2025-01-17 06" holds 10 and stays readable).
_GROUPED_DIGITS = re.compile(r"(?<![\d-])\d{4}(?:[ -]\d{1,6}){2,4}(?![\d-])")


def _mask(digits: str) -> str:
    if len(digits) >= 13:
        return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
    if luhn_ok(digits):  # a short PAN: first six and last four would be all of it
        return "*" * (len(digits) - 4) + digits[-4:]
    return digits


def mask_pans(text: str) -> str:
    """`4539910012345678` → `453991******5678`: never more than first 6 and last 4.

    Every run of 13 digits or more is masked (a PAN run together with its expiry included); a
    shorter run (PANs may have 10 to 12 digits) is masked to its last four when it passes the
    Luhn check, so ordinary numbers stay readable.
    """
    if _MAYBE_PAN.search(text) is None:
        return text
    masked = _DIGIT_RUN.sub(lambda m: _mask(m.group(0)), text)
    return _GROUPED_DIGITS.sub(_mask_grouped, masked)


def unmasked(text: str) -> bool:
    """Whether `mask_pans` leaves `text` as it is. Ids we make must: their digits are random,
    a run of them can read as a PAN, and logs would then not show the id one searches for."""
    return mask_pans(text) == text


def unmasked_hex_id() -> str:
    """32 random hex digits (a uuid4's) that `mask_pans` leaves as they are: about one uuid4
    in 35 is drawn again. For correlation, request and message ids."""
    while True:
        made = uuid.uuid4().hex
        if unmasked(made):
            return made


def _mask_grouped(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return _mask(digits) if 13 <= len(digits) <= 19 else match.group(0)


def _luhn(pan: str) -> str:
    if not luhn_ok(pan):
        raise ValueError("fails the Luhn check")
    return pan


def _month(yymm: str) -> str:
    if not 1 <= int(yymm[2:]) <= 12:
        raise ValueError("must be YYMM with a month from 01 to 12")
    return yymm


def normalized_key(key: object) -> str:
    """`trackData`, `track_data`, `TRACK-DATA` → `trackdata`: one spelling to compare."""
    return str(key).lower().replace("_", "").replace("-", "")


# What travels only inside `encryptedData` (normalized): the fields below, plus the other names
# issuers use for the CSC, the tracks and chip data. Found anywhere in clear, a request is refused.
CARD_DATA_KEYS = frozenset(
    {
        "pan",
        "exp",
        "cvv",
        "cvv1",
        "cvv2",
        "cvc",
        "cvc2",
        "csc",
        "cid",
        "pvv",
        "trackdata",
        "track1",
        "track2",
        "track3",
        "encodedname",
        "paymentaccountreference",
        "pansequencenumber",
        "effectivedate",
        "iccdata",
        "chipdata",
        "emvdata",
        "pinblock",
    }
)


def is_card_data_key(key: object) -> bool:
    return normalized_key(key) in CARD_DATA_KEYS


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
