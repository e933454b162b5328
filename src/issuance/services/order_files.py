"""Reading order files line by line: JSON Lines and CSV, to the API's order bodies.

Both formats carry exactly the batch API's card item (`CardItem`: an order body plus `cardId`), so
the same validation applies. A JSON Lines file has one such object per line. A CSV file has a
header of dotted field paths (`cardId`, `services.issuance`, `shipment.deliveryAddress.city`, …);
a numeric segment is a list index (`cardDesign.customLines.0`); an empty cell is an absent field.
Values stay strings and are coerced as the API would (`"true"` for a boolean).

The file is read as a stream, one record at a time, so memory does not grow with its size; a
shared byte counter lets the caller show progress.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

from issuance.domain.errors import Problem


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True, slots=True)
class Record:
    """One order of the file: its body, or why it could not be read."""

    line: int
    body: Any
    problem: Problem | None = None


class Progress:
    """Bytes read so far, updated as the file is consumed."""

    def __init__(self) -> None:
        self.bytes_read = 0


class BadHeader(ValueError):
    """The CSV header cannot describe an order: the whole file is refused before any line."""


def records(
    stream: IO[bytes], fmt: FileFormat, progress: Progress | None = None
) -> Iterator[Record]:
    """The file's records in order; blank lines are skipped."""
    lines = _text_lines(stream, progress or Progress())
    yield from (_jsonl(lines) if fmt is FileFormat.JSONL else _csv(lines))


_LONE_CR = re.compile(r"(?<=\r)(?!\n)")  # after a CR that no LF follows


def _text_lines(stream: IO[bytes], progress: Progress) -> Iterator[str]:
    """Lines ending in LF, CRLF or a lone CR (old spreadsheet exports): the csv module refuses
    a CR inside what it is given as one line."""
    for raw in stream:
        progress.bytes_read += len(raw)
        text = raw.decode("utf-8", errors="replace")
        yield from (_LONE_CR.split(text) if "\r" in text else (text,))


def _jsonl(lines: Iterator[str]) -> Iterator[Record]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            body = json.loads(text)
        except ValueError:
            yield Record(number, None, Problem("INVALID_JSON", None, "the line is not valid JSON"))
            continue
        if not isinstance(body, dict):
            problem = Problem("FIELD_INVALID_FORMAT", None, "the line must be a JSON object")
            yield Record(number, None, problem)
            continue
        yield Record(number, body)


def _csv(lines: Iterator[str]) -> Iterator[Record]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return
    paths = [_path(column) for column in header]
    _check_header(paths)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(paths):
            problem = Problem("FIELD_INVALID_FORMAT", None, "the row has more cells than columns")
            yield Record(reader.line_num, None, problem)
            continue
        body: dict[str, Any] = {}
        for path, cell in zip(paths, row, strict=False):
            if cell != "":
                _put(body, path, cell)
        yield Record(reader.line_num, _lists(body))


def _path(column: str) -> tuple[str, ...]:
    parts = tuple(column.strip().split("."))
    if not all(parts):
        raise BadHeader(f"column {column!r} is not a dotted field path")
    return parts


def _check_header(paths: list[tuple[str, ...]]) -> None:
    """No column twice, and none that is both a value and an object (`shipment`, `shipment.type`)."""
    if len(set(paths)) != len(paths):
        raise BadHeader("a column appears twice")
    known = set(paths)
    for path in paths:
        if any(path[:end] in known for end in range(1, len(path))):
            raise BadHeader(f"column {'.'.join(path)!r} is inside another column")


def _put(body: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    node = body
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _lists(node: Any) -> Any:
    """Objects whose keys are all indices become lists, in index order."""
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted
