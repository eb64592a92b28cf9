"""A self-contained SVG chart of a benchmark report: throughput and latency per contender.

Hand-written SVG (no plotting dependency): two panels with log-scale bars, one for operations
per second, one for the p50 / p99 / p99.9 latency of one operation.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

_WIDTH = 760
_BAR_HEIGHT = 16
_LABEL_WIDTH = 110
_PLOT_WIDTH = _WIDTH - _LABEL_WIDTH - 140
_PERCENTILES = (
    ("p50_ns", "p50", "#4c78a8"),
    ("p99_ns", "p99", "#f58518"),
    ("p999_ns", "p99.9", "#e45756"),
)


def _x(value: int, low: int, high: int) -> int:
    """Pixel offset of a value on a log axis from low to high."""
    if value <= low:
        return 0
    span = math.log10(high) - math.log10(low)
    return round(_PLOT_WIDTH * (math.log10(value) - math.log10(low)) / span)


def _axis(lines: list[str], top: int, height: int, low: int, high: int, unit: str) -> None:
    decade = low
    while decade <= high:
        x = _LABEL_WIDTH + _x(decade, low, high)
        lines.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{top + height}" stroke="#ddd"/>')
        lines.append(
            f'<text x="{x}" y="{top + height + 14}" font-size="10" text-anchor="middle">'
            f"{decade:,}{unit}</text>"
        )
        decade *= 10


def _decades(values: list[int]) -> tuple[int, int]:
    low = 10 ** math.floor(math.log10(max(1, min(values))))
    high = 10 ** math.ceil(math.log10(max(values) + 1))
    return low, high


def render_svg(report: dict[str, Any], title: str) -> str:
    results = report["results"]
    lines: list[str] = []
    top = 40
    lines.append(f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>')

    lines.append(f'<text x="10" y="{top}" font-size="12">operations per second (log)</text>')
    top += 10
    low, high = _decades([r["ops_per_s"] for r in results])
    panel = len(results) * (_BAR_HEIGHT + 6)
    _axis(lines, top, panel, low, high, "")
    for i, r in enumerate(results):
        y = top + i * (_BAR_HEIGHT + 6)
        width = max(1, _x(r["ops_per_s"], low, high))
        lines.append(f'<text x="10" y="{y + 12}" font-size="12">{escape(r["name"])}</text>')
        lines.append(
            f'<rect x="{_LABEL_WIDTH}" y="{y}" width="{width}" height="{_BAR_HEIGHT}" '
            'fill="#54a24b"/>'
        )
        lines.append(
            f'<text x="{_LABEL_WIDTH + width + 6}" y="{y + 12}" font-size="11">'
            f"{r['ops_per_s']:,}/s</text>"
        )
    top += panel + 40

    lines.append(f'<text x="10" y="{top}" font-size="12">latency of one operation (log)</text>')
    top += 10
    low, high = _decades([r[key] for r in results for key, _, _ in _PERCENTILES])
    group = len(_PERCENTILES) * (_BAR_HEIGHT // 2 + 2) + 8
    panel = len(results) * group
    _axis(lines, top, panel, low, high, " ns")
    for i, r in enumerate(results):
        y = top + i * group
        lines.append(f'<text x="10" y="{y + 16}" font-size="12">{escape(r["name"])}</text>')
        for j, (key, label, colour) in enumerate(_PERCENTILES):
            bar_y = y + j * (_BAR_HEIGHT // 2 + 2)
            width = max(1, _x(r[key], low, high))
            lines.append(
                f'<rect x="{_LABEL_WIDTH}" y="{bar_y}" width="{width}" '
                f'height="{_BAR_HEIGHT // 2}" fill="{colour}"/>'
            )
            lines.append(
                f'<text x="{_LABEL_WIDTH + width + 6}" y="{bar_y + 8}" font-size="9">'
                f"{label} {r[key]:,} ns</text>"
            )
    top += panel + 30
    height = top + 10
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>'
        + "".join(lines)
        + "</svg>\n"
    )


__all__ = ["render_svg"]
