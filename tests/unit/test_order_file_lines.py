"""Order files with every line ending spreadsheets write: LF, CRLF, and a lone CR."""

from __future__ import annotations

import io

import pytest

from issuance.services.order_files import FileFormat, records


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_a_csv_reads_the_same_with_any_line_ending(end: bytes) -> None:
    content = end.join([b"cardId,consumerId", b"c1,a", b'c2,"b' + end + b'c"', b""])
    found = [
        (r.body["cardId"], r.body["consumerId"])
        for r in records(io.BytesIO(content), FileFormat.CSV)
    ]
    assert found == [("c1", "a"), ("c2", "b" + end.decode() + "c")]


def test_a_stray_cr_in_a_csv_is_a_line_break_not_an_error() -> None:
    lines = list(records(io.BytesIO(b"\n\x00\n\r\x00"), FileFormat.CSV))
    assert [r.problem.code if r.problem else None for r in lines] == [
        "FIELD_INVALID_FORMAT",
        "FIELD_INVALID_FORMAT",
    ]
