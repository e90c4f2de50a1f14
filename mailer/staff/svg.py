"""Charts drawn as SVG on the server: pure functions from figures to escaped, deterministic markup.

Every chart is an ``<svg role="img">`` named by its ``<title>`` and ``<desc>``, scaled by its viewBox to
the width of the page, with colours from the Okabe-Ito palette (told apart with colour blindness) set
as SVG attributes (the site's CSP allows no inline styles). Every bar carries its own ``<title>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 400
LEFT = 52
RIGHT = 8
PLOT_WIDTH = WIDTH - LEFT - RIGHT
INK = "#1d2733"
GRID = "#c9d1da"
BLUE, GREEN, ORANGE, PINK, VERMILLION = "#0072B2", "#009E73", "#E69F00", "#CC79A7", "#D55E00"


@dataclass(frozen=True)
class Series:
    """Values of one kind, one per point on the x axis, drawn in one colour."""

    name: str
    colour: str
    values: Sequence[int]


def nice_ceiling(value: int) -> int:
    """The smallest round number holding ``value`` whose half is whole: 2 … 10, 12, 16, 20, 30 … 80, 100, 120 …"""
    if value <= 10:
        return next(step for step in (2, 4, 6, 8, 10) if step >= value)
    power = 1
    while True:
        for step in (10, 12, 16, 20, 30, 40, 50, 60, 80):
            if step * power >= value:
                return step * power
        power *= 10


def number(value: int) -> str:
    """A count as people read it: 12,345."""
    return f"{value:,}"


def _svg(name: str, title: str, desc: str, height: int, body: list[str]) -> Markup:
    """The outer element, its title and description, and ``body`` (markup already escaped)."""
    ids = f"chart-{escape(name)}-title chart-{escape(name)}-desc"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="{ids}" font-size="13" fill="{INK}">'
        f'<title id="chart-{escape(name)}-title">{escape(title)}</title>'
        f'<desc id="chart-{escape(name)}-desc">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _text(x: float, y: float, content: str, anchor: str = "start", extra: str = "") -> str:
    """A label at (x, y)."""
    return f'<text x="{x:g}" y="{y:g}" text-anchor="{anchor}"{extra}>{escape(content)}</text>'


def _rect(x: float, y: float, width: float, height: float, colour: str, label: str, kind: str) -> str:
    """One bar with its own tooltip; ``kind`` names its series for styling and tests."""
    return (
        f'<rect class="bar" data-series="{escape(kind)}" x="{x:.2f}" y="{y:.2f}" width="{width:.2f}" '
        f'height="{height:.2f}" fill="{colour}"><title>{escape(label)}</title></rect>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, colour: str = GRID) -> str:
    """A grid or axis line."""
    return f'<line x1="{x1:.2f}" y1="{y1:.2f}" x2="{x2:.2f}" y2="{y2:.2f}" stroke="{colour}"/>'


def _legend(series: Sequence[Series], y: float) -> list[str]:
    """Swatches and names, two to a row, from ``y`` down."""
    parts = []
    for index, one in enumerate(series):
        x, row = LEFT + (index % 2) * (PLOT_WIDTH / 2), y + (index // 2) * 18
        parts.append(f'<rect x="{x:g}" y="{row - 10:g}" width="12" height="12" fill="{one.colour}"/>')
        parts.append(_text(x + 17, row, one.name))
    return parts


def _value_axis(top: int, zero_y: float, height: float, sign: str = "") -> list[str]:
    """Grid lines and labels for 0, half and ``top`` over a plot ``height`` tall, up from ``zero_y``."""
    parts = []
    for value in (0, top // 2, top):
        y = zero_y - value / top * height
        parts.append(_line(LEFT, y, WIDTH - RIGHT, y))
        parts.append(_text(LEFT - 5, y + 4, (sign if value else "") + number(value), "end"))
    return parts


def _x_labels(labels: Sequence[str], y: float, every: int) -> list[str]:
    """Every ``every``-th label under its slot, the last one always."""
    slot = PLOT_WIDTH / len(labels)
    shown = [i for i in range(len(labels)) if i % every == 0 or i == len(labels) - 1]
    if len(shown) > 1 and shown[-1] - shown[-2] < every:
        shown.pop(-2)  # too close to the last label to fit beside it
    return [_text(LEFT + (i + 0.5) * slot, y, labels[i], "middle") for i in shown]


def line_over_bars(name: str, title: str, desc: str, labels: Sequence[str], line: Series, up: Series,
                   down: Series, axis: str) -> Markup:  # fmt: skip
    """A line (``line``) over a panel of bars going up (``up``) and down (``down``) from zero, per label."""
    slot = PLOT_WIDTH / len(labels)
    line_top = nice_ceiling(max(line.values))
    bar_top = nice_ceiling(max(*up.values, *down.values))
    body = [*_legend((line, up, down), 16), _text(LEFT, 58, line.name + " (end of week)", extra=' font-weight="600"')]
    body += _value_axis(line_top, 166, 96)
    points = " ".join(f"{LEFT + (i + 0.5) * slot:.2f},{166 - v / line_top * 96:.2f}" for i, v in enumerate(line.values))
    body.append(f'<polyline points="{points}" fill="none" stroke="{line.colour}" stroke-width="2.5"/>')
    for i, value in enumerate(line.values):
        body.append(
            f'<circle class="point" cx="{LEFT + (i + 0.5) * slot:.2f}" cy="{166 - value / line_top * 96:.2f}" r="3" '
            f'fill="{line.colour}"><title>{escape(labels[i])}: {number(value)}</title></circle>'
        )
    body.append(_text(LEFT, 196, f"{up.name} and {down.name.lower()} per week", extra=' font-weight="600"'))
    body += _value_axis(bar_top, 262, 54, "+") + _value_axis(bar_top, 262, -54, "−")[2:]
    for series, direction in ((up, 1), (down, -1)):
        for i, value in enumerate(series.values):
            height = value / bar_top * 54
            y = 262 - height if direction > 0 else 262
            label = f"{labels[i]}: {number(value)} {series.name.lower()}"
            body.append(_rect(LEFT + i * slot + slot * 0.15, y, slot * 0.7, height, series.colour, label, series.name))
    body += _x_labels(labels, 336, 4) + [_text(LEFT + PLOT_WIDTH / 2, 354, axis, "middle")]
    return _svg(name, title, desc, 362, body)


def horizontal_bars(name: str, title: str, desc: str, bars: Sequence[tuple[str, int]], colour: str,
                    axis: str) -> Markup:  # fmt: skip
    """One horizontal bar per (label, value), longest for the largest, with its value written after it."""
    top = nice_ceiling(max(value for _, value in bars))
    width = PLOT_WIDTH - 56  # room for the value written after the longest bar
    height = 24 + 34 * len(bars)
    body = []
    for value in (0, top // 2, top):
        x = LEFT + 28 + value / top * width
        body += [_line(x, 8, x, height - 16), _text(x, height - 4, number(value), "middle")]
    for i, (label, value) in enumerate(bars):
        y, length = 12 + i * 34, value / top * width
        body.append(_text(LEFT + 22, y + 18, label, "end"))
        body.append(_rect(LEFT + 28, y, length, 24, colour, f"{label}: {number(value)}", label))
        body.append(_text(LEFT + 33 + length, y + 18, number(value)))
    body.append(_text(LEFT + 28 + width / 2, height + 14, axis, "middle"))
    return _svg(name, title, desc, height + 20, body)


def stacked_columns(name: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series],
                    axis: str) -> Markup:  # fmt: skip
    """One column per label, its segments the series' values stacked in order from the bottom."""
    slot = PLOT_WIDTH / len(labels)
    totals = [sum(one.values[i] for one in series) for i in range(len(labels))]
    top = nice_ceiling(max(totals))
    legend_rows = (len(series) + 1) // 2
    zero_y = 36 + 18 * legend_rows + 160
    body = [*_legend(series, 16), *_value_axis(top, zero_y, 160)]
    for i, label in enumerate(labels):
        y = zero_y
        for one in series:
            height = one.values[i] / top * 160
            y -= height
            text = f"{label}: {number(one.values[i])} {one.name.lower()}"
            body.append(_rect(LEFT + i * slot + slot * 0.15, y, slot * 0.7, height, one.colour, text, one.name))
    body += _x_labels(labels, zero_y + 18, 2 if len(labels) > 10 else 1)
    body.append(_text(LEFT + PLOT_WIDTH / 2, zero_y + 38, axis, "middle"))
    return _svg(name, title, desc, zero_y + 46, body)
