"""The plots page: one HTML file, a Vega-Lite chart per plot, that works offline.

Charts are Vega-Lite specs (the grammar DVC's own plots use) drawn in the
browser by vega-embed as SVG. The JavaScript of Vega, Vega-Lite and
vega-embed comes from the ``vl-convert-python`` wheel, which ships them
bundled: the page inlines that bundle, so it loads no script, style or font
from the network. Building the bundle starts a JavaScript runtime (about two
seconds), so it is kept in the user's cache folder, one file per
vl-convert version.

``chart_spec`` and ``render_page`` are pure; ``vega_bundle`` and
``write_page`` do the I/O.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

from exq.engine.errors import ExqError
from exq.engine.plots.model import Chart, Line, Number, RevPlots
from exq.engine.writes import atomic_write_bytes, atomic_write_text

MAX_POINTS = 5000  # per line: more than a chart can show, and pages stay small
POINTS_UP_TO = 60  # lines this short also draw their points (a one-step run is visible)
WIDTH, HEIGHT = 460, 260
BUNDLE_PACKAGE = "vl-convert-python"
STATIC = "static"  # the page's folder of images

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
p.revs { color: #555; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
.chart { border: 1px solid #ddd; padding: 0.5em; background: #fff; }
.image { margin-top: 1.5em; }
.image h3 { font-size: 1em; font-weight: normal; color: #555; }
.image .row { display: flex; flex-wrap: wrap; gap: 1em; }
.image figure { margin: 0; border: 1px solid #ddd; padding: 0.5em; }
.image img { max-width: 460px; display: block; }
.image figcaption { text-align: center; color: #555; margin-top: 0.3em; }
"""

# Embeds every spec; ``window.exqPlotsReady`` settles when all are drawn (tests wait on it).
_EMBED = """
(function () {
  var specs = JSON.parse(document.getElementById("exq-plot-specs").textContent);
  var options = {renderer: "svg", actions: false, mode: "vega-lite"};
  var drawn = specs.map(function (spec, i) {
    return vegaEmbed("#exq-chart-" + i, spec, options);
  });
  window.exqPlotsReady = Promise.all(drawn).then(function () { return drawn.length; },
    function (error) { console.error("exq plots: " + error); throw error; });
})();
"""


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
    if chart.plot_id:
        title: dict[str, Any] = {"text": chart.title or chart.plot_id}
    else:
        title = {"text": chart.metric, "subtitle": chart.file}
    build = _BUILDERS.get(chart.template, _line)
    return {"title": title, "data": {"values": values}, **build(chart, color, labels)}


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


def _script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>``, no ``<!--``."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclass(frozen=True)
class ImageFile:
    """An image plot of one revision, as the page shows it: ``src`` relative to the page."""

    path: str
    rev: str
    src: str


def image_name(rev: str, path: str) -> str:
    """The file name of a revision's image beside the page, as DVC names it (``rev_a_b.png``)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{rev}_{path}")


def _images_html(images: Sequence[ImageFile], revs: Sequence[str]) -> str:
    """Each image path with its revisions side by side, in the order of ``revs``."""
    by_path: dict[str, dict[str, ImageFile]] = {}
    for image in images:
        by_path.setdefault(image.path, {})[image.rev] = image
    blocks = []
    for path, by_rev in by_path.items():
        figures = "".join(
            f'<figure><img src="{escape(by_rev[rev].src)}" alt="{escape(path)} ({escape(rev)})">'
            f"<figcaption>{escape(rev)}</figcaption></figure>"
            for rev in revs
            if rev in by_rev
        )
        blocks.append(
            f'<div class="image" data-image="{escape(path)}" data-revs="{len(by_rev)}">'
            f'<h3>{escape(path)}</h3><div class="row">{figures}</div></div>'
        )
    return "\n".join(blocks)


def render_page(
    charts: Sequence[Chart],
    revs: Sequence[str],
    bundle: str,
    *,
    title: str,
    images: Sequence[ImageFile] = (),
) -> str:
    """The whole page: a heading, the revisions, every chart, then the images."""
    specs = [chart_spec(chart, revs) for chart in charts]
    divs = "\n".join(
        f'<div class="chart" id="exq-chart-{i}" data-plot="{escape(chart.id)}" '
        f'data-lines="{len(chart.lines)}" data-template="{escape(chart.template)}"></div>'
        for i, chart in enumerate(charts)
    )
    safe_bundle = bundle.replace("</script", "<\\/script")
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n"
        f"<script>{safe_bundle}</script>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n"
        f'<p class="revs">Revisions: {escape(", ".join(revs))}</p>\n'
        f'<div class="charts">\n{divs}\n</div>\n'
        f'<div class="images">\n{_images_html(images, revs)}\n</div>\n'
        f'<script type="application/json" id="exq-plot-specs">{_script_json(specs)}</script>\n'
        f"<script>{_EMBED}</script>\n</body>\n</html>\n"
    )


# -- I/O -------------------------------------------------------------------------


def _cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "exq"


def vega_bundle(cache_dir: Path | None = None) -> str:
    """The JavaScript of vega, vega-lite and vega-embed, defining ``window.vegaEmbed``.

    Made by vl-convert from the copies its wheel ships (no network), and kept
    under ``cache_dir`` (default ``$XDG_CACHE_HOME/exq``) for the next page.
    """
    try:
        version = metadata.version(BUNDLE_PACKAGE)
        import vl_convert
    except (metadata.PackageNotFoundError, ImportError) as exc:
        raise ExqError(
            f"{BUNDLE_PACKAGE} is not installed: plots cannot be drawn",
            hint=f"pip install {BUNDLE_PACKAGE}",
        ) from exc
    path = (cache_dir or _cache_home()) / f"vega-bundle-{version}.js"
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    # The stub makes the optional snippet required; the function takes none.
    bundle = str(vl_convert.javascript_bundle())  # type: ignore[call-arg]
    try:
        atomic_write_text(path, bundle)
    except OSError:
        pass  # a read-only home: the next page builds the bundle again
    return bundle


def write_images(out_dir: Path, revs: Sequence[RevPlots]) -> list[ImageFile]:
    """Write every revision's images into ``out_dir/static`` (atomically), for the page."""
    found = []
    for rev in revs:
        for path, raw in rev.images.items():
            name = image_name(rev.rev, path)
            target = out_dir / STATIC / name
            try:
                atomic_write_bytes(target, raw)
            except OSError as exc:
                raise ExqError(f"{target}: cannot write an image: {exc.strerror or exc}") from exc
            found.append(ImageFile(path, rev.rev, f"{STATIC}/{name}"))
    return found


def write_page(
    out_dir: Path,
    charts: Sequence[Chart],
    revs: Sequence[str],
    *,
    title: str = "exq plots",
    images: Sequence[ImageFile] = (),
) -> Path:
    """Write ``out_dir/index.html`` (atomically) and return its absolute path."""
    page = render_page(charts, revs, vega_bundle(), title=title, images=images)
    path = (out_dir / "index.html").absolute()
    try:
        atomic_write_text(path, page)
    except OSError as exc:
        raise ExqError(f"{path}: cannot write the plots page: {exc.strerror or exc}") from exc
    return path
