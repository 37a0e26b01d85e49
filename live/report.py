"""The live HTML report: one inline-SVG line chart per metric plus the summary.

Pure functions from plain data to text, standard library only.  The page has
no script and loads nothing (generic font families, inline styles), so it
works offline and a browser console stays empty.  While the run goes on the
page reloads itself every few seconds (``<meta http-equiv=refresh>``); the
final page written by ``Live.end()`` does not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from html import escape
from operator import itemgetter
from typing import Any

Point = tuple[int, float]

MAX_POINTS = 1000  # per chart: keeps the page small on long runs
_W, _H = 560, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 30, 40

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-family: monospace; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
svg.exq-plot { border: 1px solid #ddd; background: #fff; }
svg .line { fill: none; stroke: #1f77b4; stroke-width: 1.5; }
svg .dot { fill: #1f77b4; }
svg .grid { stroke: #eee; }
svg .axis { stroke: #888; }
svg text { font-size: 11px; fill: #444; }
svg text.title { font-size: 13px; fill: #111; }
"""


def render_report(
    title: str,
    summary: Mapping[str, Any],
    series: Mapping[str, Sequence[Point]],
    *,
    refresh_seconds: int | None = None,
    experiment: str | None = None,
    params: Sequence[str] = (),
) -> str:
    """The whole page: the experiment and its ``-S`` params (when it runs in one),
    the summary table, then a chart for every metric."""
    if experiment:
        title = f"{experiment}: {title}"
    head = ['<meta charset="utf-8">', f"<title>{escape(title)}</title>"]
    if refresh_seconds:
        head.append(f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">')
    head.append(f"<style>{_STYLE}</style>")
    charts = "\n".join(line_chart_svg(name, points) for name, points in series.items())
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    state = "running, refreshes itself" if refresh_seconds else "finished"
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        + "\n".join(head)
        + "\n</head>\n<body>\n"
        + f"<h1>{escape(title)}</h1>\n"
        + _experiment_html(experiment, params)
        + f'<p class="status">Updated {stamp} ({state}).</p>\n'
        + summary_table(summary)
        + f'\n<div class="charts">\n{charts}\n</div>\n</body>\n</html>\n'
    )


def _experiment_html(experiment: str | None, params: Sequence[str]) -> str:
    if not experiment:
        return ""
    edits = " ".join(f"<code>{escape(edit)}</code>" for edit in params) or "as committed"
    return f'<p class="experiment">Experiment <b>{escape(experiment)}</b>; params: {edits}.</p>\n'


def summary_table(summary: Mapping[str, Any]) -> str:
    """The summary as a two-column table, nested keys joined with ``/``."""
    rows = "".join(
        f'<tr><td>{escape(key)}</td><td class="num" title="{escape(repr(value))}">'
        f"{escape(_short(value))}</td></tr>"
        for key, value in _flatten(summary)
    )
    return f'<table class="summary"><tr><th>metric</th><th>value</th></tr>{rows}</table>'


def line_chart_svg(name: str, points: Sequence[Point]) -> str:
    """One chart: steps on x, values on y, with ticks, a line and dots."""
    # sum() runs in C and any nan/inf makes it non-finite; the filter is the rare path
    if not math.isfinite(sum(map(itemgetter(1), points))):
        points = [(s, v) for s, v in points if math.isfinite(v)]
    shown = decimate(points, MAX_POINTS)
    parts = [
        f'<svg class="exq-plot" data-metric="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img">',
        f'<text class="title" x="{_W / 2}" y="18" text-anchor="middle">{escape(name)}</text>',
    ]
    if not shown:
        parts.append(f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(parts)
    x_lo, x_hi = _span(min(s for s, _ in shown), max(s for s, _ in shown))
    y_lo, y_hi = _span(min(v for _, v in shown), max(v for _, v in shown))
    x_ticks = [t for t in nice_ticks(x_lo, x_hi) if t == int(t)] or [x_lo]
    y_ticks = nice_ticks(y_lo, y_hi)
    x_lo, x_hi = min(x_lo, x_ticks[0]), max(x_hi, x_ticks[-1])
    y_lo, y_hi = min(y_lo, y_ticks[0]), max(y_hi, y_ticks[-1])

    def px(step: float) -> float:
        return _LEFT + (step - x_lo) / (x_hi - x_lo) * (_W - _LEFT - _RIGHT)

    def py(value: float) -> float:
        return _H - _BOTTOM - (value - y_lo) / (y_hi - y_lo) * (_H - _TOP - _BOTTOM)

    parts.extend(_axes(x_ticks, y_ticks, px, py))
    coords = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in shown)
    parts.append(f'<polyline class="line" points="{coords}"/>')
    if len(shown) <= 60:
        parts.extend(
            f'<circle class="dot" cx="{px(s):.1f}" cy="{py(v):.1f}" r="2.5"/>' for s, v in shown
        )
    parts.append("</svg>")
    return "".join(parts)


def _axes(x_ticks: list[float], y_ticks: list[float], px: Any, py: Any) -> list[str]:
    bottom, right = _H - _BOTTOM, _W - _RIGHT
    out = [f'<text x="{(_LEFT + right) / 2}" y="{_H - 6}" text-anchor="middle">step</text>']
    for tick in x_ticks:
        x = px(tick)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{bottom}"/>')
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{_label(tick)}</text>'
        )
    for tick in y_ticks:
        y = py(tick)
        out.append(f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(tick)}</text>')
    # axes last so the grid does not paint over them
    out.append(f'<line class="axis" x1="{_LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>')
    out.append(f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}"/>')
    return out


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (1, 2, 5 x 10^k steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def decimate(points: Sequence[Point], limit: int) -> list[Point]:
    """At most about ``limit`` points, keeping each bucket's min and max (spikes stay)."""
    count = len(points)
    if count <= limit:
        return list(points)
    values = list(map(itemgetter(1), points))
    buckets = max(limit // 2, 1)
    keep: list[int] = []
    for b in range(buckets):
        start, end = b * count // buckets, (b + 1) * count // buckets
        if start >= end:
            continue
        chunk = values[start:end]  # min/max/index run in C: fast on long runs
        low, high = start + chunk.index(min(chunk)), start + chunk.index(max(chunk))
        keep.extend(sorted({low, high}))
    if keep[-1] != count - 1:
        keep.append(count - 1)
    return [points[i] for i in keep]


def _span(lo: float, hi: float) -> tuple[float, float]:
    if hi > lo:
        return float(lo), float(hi)
    pad = abs(lo) * 0.1 or 1.0
    return lo - pad, hi + pad


def _label(value: float) -> str:
    return f"{value:.6g}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(_flatten(value, name + "/"))
        else:
            out.append((name, value))
    return out
