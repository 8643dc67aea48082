"""Small server-rendered charts: an inline SVG string, no script, no style attribute
(the pages' CSP allows neither inline), readable without a legend: labelled axes,
a dot per point with its value written beside it, and a <title> per dot for the
detail on hover.  Used by 我的质检 and any per-agent page (a trend of mean scores)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class ChartPoint:
    """One point: its x label, its value (None: no data, no dot), a hover note."""

    label: str
    value: float | None
    note: str = ""


def _fmt(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.1f}"


def _axis_range(values: list[float], lo: float, hi: float) -> tuple[float, float, float]:
    """A y range within [lo, hi] around the values, on round ticks: (low, high, step)."""
    vmin, vmax = min(values), max(values)
    span = max(vmax - vmin, 10.0)
    step = 5.0 if span <= 20 else 10.0 if span <= 50 else 20.0
    low = max(lo, math.floor((vmin - step / 2) / step) * step)
    high = min(hi, math.ceil((vmax + step / 2) / step) * step)
    if high - low < step:
        high = min(hi, low + step)
        low = max(lo, high - step)
    return low, high, step


def line_chart_svg(
    points: Sequence[ChartPoint],
    *,
    title: str,
    y_label: str = "平均分",
    x_label: str = "周",
    lo: float = 0.0,
    hi: float = 100.0,
    width: int = 640,
    height: int = 260,
) -> str:
    """An SVG line chart of `points` (left to right) with values between lo and hi;
    "" when no point has a value.  Every text is escaped: labels may be user data."""
    shown = [p.value for p in points if p.value is not None]
    if not shown:
        return ""
    low, high, step = _axis_range([float(v) for v in shown], lo, hi)
    left, right, top, bottom = 56, 16, 28, 48
    plot_w, plot_h = width - left - right, height - top - bottom

    pad = 28  # the first and last dots (and their values) stay clear of the edges

    def x_at(i: int) -> float:
        if len(points) == 1:
            return left + plot_w / 2
        return left + pad + (plot_w - 2 * pad) * i / (len(points) - 1)

    def y_at(v: float) -> float:
        return top + plot_h * (1 - (v - low) / (high - low))

    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fbfcfe" '
        'stroke="#d9e2ec"/>',
    ]
    tick = low
    while tick <= high + 1e-9:
        y = y_at(tick)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e4e7eb"/>'
        )
        out.append(
            f'<text class="y-tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11" fill="#52606d">{_fmt(tick)}</text>'
        )
        tick += step
    every = max(1, math.ceil(len(points) / 12))  # at most about 12 x labels
    for i, p in enumerate(points):
        if i % every == 0 or i == len(points) - 1:
            out.append(
                f'<text class="x-tick" x="{x_at(i):.1f}" y="{top + plot_h + 16}" '
                f'text-anchor="middle" font-size="11" fill="#52606d">{escape(p.label)}</text>'
            )
    out.append(
        f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{height - 8}" '
        f'text-anchor="middle" font-size="12" fill="#1f2933">{escape(x_label)}</text>'
    )
    out.append(
        f'<text class="axis-label" x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'font-size="12" fill="#1f2933" transform="rotate(-90 14 {top + plot_h / 2:.1f})">'
        f"{escape(y_label)}</text>"
    )
    # the line breaks where a point has no value
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, p in enumerate(points):
        if p.value is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{x_at(i):.1f},{y_at(float(p.value)):.1f}")
    if segment:
        segments.append(segment)
    for seg in segments:
        if len(seg) > 1:
            out.append(
                f'<polyline points="{" ".join(seg)}" fill="none" stroke="#1f4e79" '
                'stroke-width="2"/>'
            )
    for i, p in enumerate(points):
        if p.value is None:
            continue
        x, y = x_at(i), y_at(float(p.value))
        note = f"{p.label}：{_fmt(float(p.value))}" + (f"（{p.note}）" if p.note else "")
        out.append(
            f'<g class="point" data-label="{escape(p.label)}" data-value="{_fmt(float(p.value))}">'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#1f4e79"><title>{escape(note)}</title>'
            f"</circle>"
            f'<text class="value" x="{x:.1f}" y="{y - 9:.1f}" text-anchor="middle" '
            f'font-size="11" fill="#1f2933">{_fmt(float(p.value))}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)
