"""The reliability summary: one row per scenario run, printed at the end of the session.

A scenario calls `record(...)` (a pytest `record_property`), which travels with its report from
an xdist worker to the controller; the terminal summary prints every row in one table. The
scenario itself fails on any loss or 5xx: the table explains, it does not judge.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

PROPERTY = "reliability"


@dataclass(frozen=True)
class Row:
    scenario: str
    orders: int
    events: int
    lost: int
    duplicated: int
    server_errors: int
    note: str = ""


def record(record_property: Callable[[str, object], None], row: Row) -> None:
    record_property(PROPERTY, json.dumps(asdict(row)))


_rows: dict[str, Row] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, value in report.user_properties:
        if name == PROPERTY:
            _rows[report.nodeid] = Row(**json.loads(str(value)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _rows:
        return
    table = Table(title="reliability")
    for column in ("scenario", "orders", "events", "lost", "duplicated", "5xx", "note"):
        table.add_column(column, justify="left" if column in ("scenario", "note") else "right")
    for _nodeid, row in sorted(_rows.items()):
        table.add_row(
            row.scenario,
            str(row.orders),
            str(row.events),
            str(row.lost),
            str(row.duplicated),
            str(row.server_errors),
            row.note,
        )
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=False, width=140).print(table)
    terminalreporter.write(buffer.getvalue())
