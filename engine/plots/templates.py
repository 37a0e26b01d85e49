"""The Vega-Lite spec of each chart, drawn as its template asks: pure.

DVC's templates, in a look of our own: ``linear`` (lines, their points when
short), ``simple`` (plain lines), ``scatter`` (points), ``smooth`` (a loess
fit whose bandwidth a slider sets, over the faint lines), ``confusion`` and
``confusion_normalized`` (a matrix of class-pair counts, or shares of each
``y`` class, per revision) and ``bar_horizontal``/``_sorted`` (a bar per
label, revisions side by side).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exq.engine.plots.model import Chart, Line, Number

MAX_POINTS = 5000  # per line: more than a chart can show, and pages stay small
POINTS_UP_TO = 60  # lines this short also draw their points (a one-step run is visible)
WIDTH, HEIGHT = 460, 260


def thin(line: Line, max_points: int = MAX_POINTS) -> list[tuple[Number, Number]]:
    """The line's points, evenly thinned to at most ``max_points``, first and last kept."""
    points = list(zip(line.xs, line.ys, strict=False))
    if len(points) <= max_points or max_points < 2:
        return points
    stride = (len(points) - 1) / (max_points - 1)
    return [points[round(i * stride)] for i in range(max_points)]


def chart_spec(chart: Chart, revs: Sequence[str]) -> dict[str, Any]:
    """The Vega-Lite spec of one chart, drawn as its template asks.

    Fields are named ``x``, ``y``, ``rev`` and ``series`` whatever the
    columns are called, so names with dots or brackets need no escaping;
    axis titles carry the names. Revisions are told apart by colour, the
    files and columns of one plot by dashes.
    """
    order = [rev for rev in revs if any(line.rev == rev for line in chart.lines)]
    labels = _series_labels(chart)
    values = [
        {"rev": line.rev, "x": x, "y": y, **({"series": labels[i]} if labels else {})}
        for i, line in enumerate(chart.lines)
        for x, y in (
            thin(line) if chart.template not in _UNTHINNED else zip(line.xs, line.ys, strict=True)
        )
    ]
    color: dict[str, Any] = {"field": "rev", "type": "nominal", "title": "revision", "sort": order}
    if len(revs) < 2:
        color["legend"] = None
    if len(order) > DEFAULT_COLORS:  # vega's own scheme repeats after ten
        color["scale"] = {"range": palette(len(order))}
    if chart.plot_id:
        title: dict[str, Any] = {"text": chart.title or chart.plot_id}
    else:
        title = {"text": chart.metric, "subtitle": chart.file}
    build = _BUILDERS.get(chart.template, _line)
    return {"title": title, "data": {"values": values}, **build(chart, color, labels)}


# Revisions up to this many take vega's category10 colours (DVC's look).
DEFAULT_COLORS = 10


def palette(count: int) -> list[str]:
    """``count`` distinct colours for as many lines: hues spread around the wheel,
    every other one darker, so neighbours in the legend stay apart."""
    return [f"hsl({round(i * 360 / count)}, 70%, {40 if i % 2 else 55}%)" for i in range(count)]


def _series_labels(chart: Chart) -> list[str]:
    """A label per line telling the files and columns of one revision apart ([] if one)."""
    files = {line.file for line in chart.lines}
    fields = {line.field for line in chart.lines}
    if len(files) < 2 and len(fields) < 2:
        return []
    names = {f: f.rsplit("/", 1)[-1] for f in files}
    if len(set(names.values())) < len(files):
        names = {f: f for f in files}
    return [
        " ".join(
            p
            for p in (
                names[line.file] if len(files) > 1 else "",
                line.field if len(fields) > 1 else "",
            )
            if p
        )
        for line in chart.lines
    ]


def _axes(chart: Chart) -> tuple[dict[str, Any], dict[str, Any]]:
    x = {
        "field": "x",
        "type": "quantitative",
        "title": chart.x_label or chart.x,
        **({"axis": {"tickMinStep": 1}} if _integers(chart) else {}),
    }
    y = {
        "field": "y",
        "type": "quantitative",
        "title": chart.y_label or chart.metric,
        "scale": {"zero": False},
    }
    return x, y


def _encoding(chart: Chart, color: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    x, y = _axes(chart)
    encoding = {"x": x, "y": y, "color": color}
    if labels:
        encoding["strokeDash"] = {"field": "series", "type": "nominal", "title": "file / column"}
        encoding["detail"] = {"field": "series"}
    return encoding


def _line(chart: Chart, color: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """``linear``: lines with a tooltip, their points drawn when they are short."""
    longest = max((len(line.xs) for line in chart.lines), default=0)
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "mark": {"type": "line", "point": longest <= POINTS_UP_TO, "tooltip": True},
        "encoding": _encoding(chart, color, labels),
    }


def _simple(chart: Chart, color: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """``simple``: plain lines."""
    return {"width": WIDTH, "height": HEIGHT, "mark": "line", **_enc(chart, color, labels)}


def _scatter(chart: Chart, color: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """``scatter``: a point per row, shaped by file and column."""
    encoding = _encoding(chart, color, labels)
    if labels:
        encoding.pop("strokeDash")
        encoding["shape"] = {"field": "series", "type": "nominal", "title": "file / column"}
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "mark": {"type": "point", "tooltip": True},
        "encoding": encoding,
    }


def _smooth(chart: Chart, color: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """``smooth``: the lines faint, a loess fit over them whose bandwidth a slider sets."""
    groupby = ["rev", "series"] if labels else ["rev"]
    encoding = _encoding(chart, color, labels)
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "params": [
            {
                "name": "smooth",
                "value": 0.3,
                "bind": {"input": "range", "min": 0.01, "max": 1, "step": 0.01},
            }
        ],
        "encoding": encoding,
        "layer": [
            {"mark": {"type": "line", "opacity": 0.2}},
            {
                "transform": [
                    {"loess": "y", "on": "x", "groupby": groupby, "bandwidth": {"signal": "smooth"}}
                ],
                "mark": {"type": "line", "tooltip": True},
            },
        ],
    }


def _bars(chart: Chart, color: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """``bar_horizontal`` (``_sorted``: longest bar first): a bar per label, revisions side by side."""
    sort = "-x" if chart.template == "bar_horizontal_sorted" else None
    return {
        "width": WIDTH,
        "height": {"step": 14},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "title": chart.x_label or chart.x},
            "y": {
                "field": "y",
                "type": "nominal",
                "title": chart.y_label or chart.metric,
                **({"sort": sort} if sort else {}),
            },
            "yOffset": {"field": "rev", "sort": color["sort"]},
            "color": color,
        },
    }


def _confusion(chart: Chart, color: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """``confusion``: a matrix of counts of (x, y) class pairs, one per revision;
    ``confusion_normalized``: each cell a share of its ``y`` class."""
    normalized = chart.template == "confusion_normalized"
    value = "share" if normalized else "count"
    transform: list[dict[str, Any]] = [
        {"aggregate": [{"op": "count", "as": "count"}], "groupby": ["rev", "x", "y"]},
        {"impute": "count", "groupby": ["rev", "y"], "key": "x", "value": 0},
        {"impute": "count", "groupby": ["rev", "x"], "key": "y", "value": 0},
    ]
    if normalized:
        transform += [
            {
                "joinaggregate": [{"op": "sum", "field": "count", "as": "total"}],
                "groupby": ["rev", "y"],
            },
            {"calculate": "datum.total ? datum.count / datum.total : 0", "as": "share"},
        ]
    text_format = ".2f" if normalized else "d"
    return {
        "facet": {"column": {"field": "rev", "sort": color["sort"], "title": None}},
        "spec": {
            "width": HEIGHT,
            "height": HEIGHT,
            "transform": transform,
            "encoding": {
                "x": {
                    "field": "x",
                    "type": "nominal",
                    "sort": "ascending",
                    "title": chart.x_label or chart.x,
                },
                "y": {
                    "field": "y",
                    "type": "nominal",
                    "sort": "ascending",
                    "title": chart.y_label or chart.metric,
                },
            },
            "layer": [
                {
                    "mark": {"type": "rect", "tooltip": True},
                    "encoding": {
                        "color": {
                            "field": value,
                            "type": "quantitative",
                            "title": value,
                            "scale": {"scheme": "blues", "domainMin": 0, "nice": True},
                        },
                    },
                },
                {
                    "mark": "text",
                    "encoding": {
                        "text": {"field": value, "type": "quantitative", "format": text_format},
                    },
                },
            ],
        },
        "resolve": {"scale": {"color": "independent"}},
    }


def _enc(chart: Chart, color: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    return {"encoding": _encoding(chart, color, labels)}


_CONFUSION_TEMPLATES = frozenset({"confusion", "confusion_normalized"})
_UNTHINNED = _CONFUSION_TEMPLATES | {"bar_horizontal", "bar_horizontal_sorted"}
_BUILDERS = {
    "confusion": _confusion,
    "confusion_normalized": _confusion,
    "linear": _line,
    "simple": _simple,
    "scatter": _scatter,
    "smooth": _smooth,
    "bar_horizontal": _bars,
    "bar_horizontal_sorted": _bars,
}


def _integers(chart: Chart) -> bool:
    """True when every x is a whole number (steps, indexes): no ticks between them."""
    return all(isinstance(x, int) for line in chart.lines for x in line.xs)
