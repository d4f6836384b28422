"""Small server-side SVG charts for the review dashboard: no JavaScript, no CDN, every label escaped."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, BAR_HEIGHT, LABEL_WIDTH = 640, 18, 220


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # 0..1
    low: float | None = None  # an interval around it, if known
    high: float | None = None
    note: str = ""


def bars(rows: list[Bar], *, title: str) -> SafeString:
    """Horizontal bars on a 0..1 scale, with whiskers for an interval."""
    span = WIDTH - LABEL_WIDTH - 70
    height = BAR_HEIGHT * len(rows) + 10

    def row(index: int, bar: Bar) -> tuple:
        y = 5 + index * BAR_HEIGHT
        width = max(0.0, min(1.0, bar.value)) * span
        whisker = ""
        if bar.low is not None and bar.high is not None:
            x1, x2 = LABEL_WIDTH + bar.low * span, LABEL_WIDTH + bar.high * span
            whisker = format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="whisker"/>', round(x1, 1), round(x2, 1), y + 8, y + 8
            )
        return (
            y + 12, bar.label[:40], LABEL_WIDTH, y + 2, round(width, 1), whisker,
            round(LABEL_WIDTH + width + 4, 1), y + 12, f"{bar.value:.2f}{(' ' + bar.note) if bar.note else ''}",
        )  # fmt: skip

    body = format_html_join(
        "",
        '<text x="0" y="{}" class="label">{}</text><rect x="{}" y="{}" width="{}" height="12" class="bar"/>{}'
        '<text x="{}" y="{}" class="value">{}</text>',
        (row(i, b) for i, b in enumerate(rows)),
    )
    return format_html(
        '<svg class="chart" role="img" viewBox="0 0 {} {}" width="{}" height="{}"><title>{}</title>{}</svg>',
        WIDTH, height, WIDTH, height, title, body,
    )  # fmt: skip
