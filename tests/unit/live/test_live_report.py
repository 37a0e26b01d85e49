"""The live HTML report: ticks, decimation and the inline SVG charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from exq.live.report import MAX_POINTS, decimate, line_chart_svg, nice_ticks, render_report


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"),
    [
        (0, 10, [0, 2, 4, 6, 8, 10]),
        (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0.13, 0.87, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (-3, 3, [-4, -2, 0, 2, 4]),
        (5, 5, [5]),
    ],
)
def test_nice_ticks(lo: float, hi: float, ticks: list[float]) -> None:
    assert nice_ticks(lo, hi) == pytest.approx(ticks)


def test_decimate_keeps_spikes_and_the_last_point() -> None:
    points = [(i, 0.0) for i in range(10_000)]
    points[4321] = (4321, 100.0)
    points[-1] = (9999, -1.0)
    out = decimate(points, 200)
    assert len(out) <= 202
    assert (4321, 100.0) in out and out[-1] == (9999, -1.0)
    assert [s for s, _ in out] == sorted(s for s, _ in out)
    assert decimate(points[:5], 200) == points[:5]


def _polyline(svg: str) -> list[tuple[float, float]]:
    root = ET.fromstring(svg)
    line = root.find("{http://www.w3.org/2000/svg}polyline")
    assert line is not None
    return [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]  # type: ignore[misc]


def test_chart_draws_every_point_inside_the_plot_area() -> None:
    svg = line_chart_svg(
        "train/loss", [(s, 1.0 / (s + 1)) for s in range(20)] + [(20, float("nan"))]
    )
    coords = _polyline(svg)
    assert len(coords) == 20
    xs = [x for x, _ in coords]
    assert xs == sorted(xs) and min(xs) == 64.0
    ys = [y for _, y in coords]
    assert ys == sorted(ys)  # loss goes down: y (from the top) grows
    assert all(30 <= y <= 240 for y in ys)
    assert 'data-metric="train/loss"' in svg and svg.count("<circle") == 20


def test_chart_of_a_long_run_is_bounded() -> None:
    svg = line_chart_svg("loss", [(s, float(s % 7)) for s in range(50_000)])
    assert len(_polyline(svg)) <= MAX_POINTS + 1
    assert "<circle" not in svg


def test_chart_without_data() -> None:
    assert "no data" in line_chart_svg("x", [(0, float("inf"))])


def test_page_is_self_contained_and_escaped() -> None:
    page = render_report(
        "logs",
        {"step": 3, "a<b": {"c": 0.123456789}},
        {"a<b/c": [(0, 1.0), (1, 2.0)]},
        refresh_seconds=5,
    )
    assert '<meta http-equiv="refresh" content="5">' in page
    assert "<script" not in page and "@import" not in page and "<link" not in page
    assert re.findall(r"https?://[^\"']+", page) == ["http://www.w3.org/2000/svg"]
    assert "a&lt;b/c" in page and "a<b" not in page
    assert "0.123457" in page
    final = render_report("logs", {"step": 0}, {})
    assert "http-equiv" not in final
