"""Properties over many PANs: BIN ranges built from a PAN contain it; masking never leaks one."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from issuance.contract import sensitive
from issuance.contract.sensitive import luhn_ok, mask_pans
from issuance.domain.programs import BinRange
from tests.unit.builders import luhn_check_digit

# No example database: unit tests write nothing outside their temporary directories.
quick = settings(database=None, max_examples=300, deadline=None)

pans = st.text(alphabet="0123456789", min_size=15, max_size=15).map(
    lambda body: body + luhn_check_digit(body)
)

pans_of_any_length = st.integers(min_value=9, max_value=18).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n).map(
        lambda body: body + luhn_check_digit(body)
    )
)

# Text around a PAN: anything but decimal digits (Unicode category Nd, which `\d` matches).
no_digits = st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), max_size=20)


@quick
@given(pan=pans)
def test_generated_pans_are_luhn_valid(pan: str) -> None:
    assert len(pan) == 16
    assert luhn_ok(pan)


@quick
@given(pan=pans, length=st.integers(min_value=6, max_value=11))
def test_a_bin_range_of_exactly_the_pan_prefix_contains_it(pan: str, length: int) -> None:
    prefix = pan[:length]

    assert BinRange(low=prefix, high=prefix).contains(pan)


@quick
@given(pan=pans, length=st.integers(min_value=6, max_value=11), wild=st.integers(0, 5))
def test_a_bin_range_widened_around_the_pan_prefix_contains_it(
    pan: str, length: int, wild: int
) -> None:
    fixed = pan[: length - wild]
    bins = BinRange(low=fixed + "0" * wild, high=fixed + "9" * wild)

    assert bins.contains(pan)


@quick
@given(pan=pans, length=st.integers(min_value=6, max_value=11))
def test_a_bin_range_just_above_the_pan_prefix_does_not_contain_it(pan: str, length: int) -> None:
    prefix = pan[:length]
    above = str(int(prefix) + 1).zfill(length)
    if len(above) > length:  # 999999 has nothing above it of the same length
        return

    assert not BinRange(low=above, high="9" * length).contains(pan)


def _leaks(output: str, pan: str) -> list[str]:
    """Every 7-digit window of `pan` that still appears in `output`."""
    return [pan[i : i + 7] for i in range(len(pan) - 6) if pan[i : i + 7] in output]


@quick
@given(before=no_digits, pan=pans, after=no_digits)
def test_mask_pans_never_leaves_seven_digits_of_a_pan(before: str, pan: str, after: str) -> None:
    output = mask_pans(before + pan + after)

    assert _leaks(output, pan) == []
    assert re.search(r"\d{7,}", output) is None
    assert pan[:6] + "******" + pan[-4:] in output


@quick
@given(before=no_digits, pan=pans_of_any_length, after=no_digits)
def test_mask_pans_never_leaves_seven_digits_of_a_pan_of_10_to_19_digits(
    before: str, pan: str, after: str
) -> None:
    output = mask_pans(before + pan + after)

    assert _leaks(output, pan) == []
    assert pan[-4:] in output


@quick
@given(parts=st.lists(st.tuples(no_digits.filter(bool), pans), min_size=1, max_size=5))
def test_mask_pans_masks_every_pan_in_a_line(parts: list[tuple[str, str]]) -> None:
    text = "".join(separator + pan for separator, pan in parts)

    output = mask_pans(text)

    assert all(_leaks(output, pan) == [] for _, pan in parts)
    assert len(output) == len(text)


def _both_masks(text: str) -> str:
    """mask_pans without its quick check: both substitutions, always."""
    runs = sensitive._DIGIT_RUN.sub(lambda m: sensitive._mask(m.group(0)), text)
    return sensitive._GROUPED_DIGITS.sub(sensitive._mask_grouped, runs)


# Digits in groups of 1 to 10, apart or run together, between letters: PANs written in
# groups, dates, phone numbers, and near misses of each.
digit_groups = st.builds(
    lambda before, groups, separator, after: before + separator.join(groups) + after,
    st.sampled_from(["", "card ", "-", "x"]),
    st.lists(st.text(alphabet="0123456789", min_size=1, max_size=6), min_size=1, max_size=6).map(
        lambda groups: ["4539", *groups[1:]] if len(groups) > 2 else groups
    ),
    st.sampled_from([" ", "-", " ", "-", "", "x", " - "]),
    st.sampled_from(["", " ok", "-", "7"]),
)


@quick
@given(text=st.one_of(digit_groups, st.text(alphabet="0123456789 -x", max_size=60)))
def test_the_quick_check_skips_only_text_that_neither_mask_would_change(text: str) -> None:
    assert mask_pans(text) == _both_masks(text)
