"""Column charts as SVG geometry: the template draws rectangles, no script and no library.

Each column is scaled to the tallest value (or to a fixed top, such as 100 % for a rate); a
missing value (a day with nothing to measure) gets no column, only its label, so a gap is never
drawn as 0 %.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 560  # SVG user units; the SVG scales to its container
HEIGHT = 160
LABEL_SPACE = 30  # below the columns, for the day labels
VALUE_SPACE = 16  # above the tallest column, for its value
GAP = 4


@dataclass(frozen=True, slots=True)
class Column:
    x: float
    y: float
    width: float
    height: float
    label: str  # under the column (e.g. `11-25`)
    value: str  # above it (e.g. `42`, `97 %`, `—`)
    centre: float  # x of the texts


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    baseline: float
    columns: list[Column]


def column_chart(points: list[tuple[str, float | None, str]], *, top: float | None = None) -> Chart:
    """`points` are (label, value or None, value text); `top` is the value of a full column."""
    highest = top if top is not None else max((v for _, v, _ in points if v), default=0.0)
    plot = HEIGHT - LABEL_SPACE - VALUE_SPACE
    baseline = float(HEIGHT - LABEL_SPACE)
    step = WIDTH / max(len(points), 1)
    columns = []
    for index, (label, value, text) in enumerate(points):
        height = plot * value / highest if value and highest else 0.0
        x = index * step + GAP / 2
        columns.append(
            Column(
                x=round(x, 1),
                y=round(baseline - height, 1),
                width=round(step - GAP, 1),
                height=round(height, 1),
                label=label,
                value=text,
                centre=round(x + (step - GAP) / 2, 1),
            )
        )
    return Chart(width=WIDTH, height=HEIGHT, baseline=baseline, columns=columns)
