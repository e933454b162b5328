"""The console's pure parts: where a form may send the browser, chart geometry, durations,
search cursors. No server, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from issuance.api.console.chart import HEIGHT, LABEL_SPACE, VALUE_SPACE, column_chart
from issuance.api.console.rendering import safe_next, span
from issuance.db.order_search import decode_cursor, encode_cursor
from issuance.domain.errors import InvalidRequest


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/console/orders?status=CARD_SHIPPED", "/console/orders?status=CARD_SHIPPED"),
        ("/console", "/console"),
        (None, "/console"),
        ("", "/console"),
        ("https://evil.example/console", "/console"),
        ("//evil.example/console", "/console"),
        ("/\\evil.example", "/console"),
        ("/console\\@evil.example", "/console"),
        ("/docs", "/console"),
        ("javascript:alert(1)", "/console"),
    ],
)
def test_a_form_only_ever_leads_back_into_the_console(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_columns_scale_to_the_tallest_and_leave_gaps_for_missing_values() -> None:
    chart = column_chart([("a", 10, "10"), ("b", 5, "5"), ("c", None, "—"), ("d", 0, "0")])
    full = HEIGHT - LABEL_SPACE - VALUE_SPACE
    heights = [column.height for column in chart.columns]
    assert heights == [full, full / 2, 0.0, 0.0]
    assert [column.value for column in chart.columns] == ["10", "5", "—", "0"]
    assert all(c.y + c.height == chart.baseline for c in chart.columns)
    rates = column_chart([("a", 50.0, "50 %")], top=100.0)
    assert rates.columns[0].height == full / 2
    assert column_chart([("a", 0, "0")]).columns[0].height == 0.0  # nothing received: no division


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=40), "40 s"),
        (timedelta(minutes=12, seconds=5), "12 min"),
        (timedelta(hours=4, minutes=5), "4 h 5 min"),
        (timedelta(days=2, hours=3, minutes=59), "2 d 3 h"),
        (-timedelta(hours=1), "1 h 0 min"),
    ],
)
def test_durations_read_like_people_say_them(delta: timedelta, text: str) -> None:
    assert span(delta) == text


def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    moment = datetime(2026, 11, 25, 14, 3, 5, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(moment, "op-1")) == (moment, "op-1")
    for forged in ("garbage!", "W10", encode_cursor(moment, "x")[:-3]):
        with pytest.raises(InvalidRequest):
            decode_cursor(forged)
