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
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

from exq.engine.errors import ExqError
from exq.engine.plots.model import Chart, Line, Number
from exq.engine.writes import atomic_write_text

MAX_POINTS = 5000  # per line: more than a chart can show, and pages stay small
POINTS_UP_TO = 60  # lines this short also draw their points (a one-step run is visible)
WIDTH, HEIGHT = 460, 260
INDEX_NAME = "index"
BUNDLE_PACKAGE = "vl-convert-python"

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
p.revs { color: #555; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
.chart { border: 1px solid #ddd; padding: 0.5em; background: #fff; }
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
    points = list(zip(line.xs, line.ys))
    if len(points) <= max_points or max_points < 2:
        return points
    stride = (len(points) - 1) / (max_points - 1)
    return [points[round(i * stride)] for i in range(max_points)]


def chart_spec(chart: Chart, revs: Sequence[str]) -> dict[str, Any]:
    """The Vega-Lite spec of one chart: a line per revision, coloured by revision.

    Fields are named ``x``, ``y`` and ``rev`` whatever the columns are called,
    so names with dots or brackets need no escaping; axis titles carry the names.
    """
    values = [{"rev": line.rev, "x": x, "y": y} for line in chart.lines for x, y in thin(line)]
    longest = max((len(line.xs) for line in chart.lines), default=0)
    order = [rev for rev in revs if any(line.rev == rev for line in chart.lines)]
    color: dict[str, Any] = {
        "field": "rev",
        "type": "nominal",
        "title": "revision",
        "sort": order,
    }
    if len(revs) < 2:
        color["legend"] = None
    x_title = "step" if chart.x == "step" else chart.x
    return {
        "title": {"text": chart.metric, "subtitle": chart.file},
        "width": WIDTH,
        "height": HEIGHT,
        "data": {"values": values},
        "mark": {"type": "line", "point": longest <= POINTS_UP_TO, "tooltip": True},
        "encoding": {
            "x": {
                "field": "x",
                "type": "quantitative",
                "title": x_title,
                **({"axis": {"tickMinStep": 1}} if _integers(chart) else {}),
            },
            "y": {
                "field": "y",
                "type": "quantitative",
                "title": chart.metric,
                "scale": {"zero": False},
            },
            "color": color,
        },
    }


def _integers(chart: Chart) -> bool:
    """True when every x is a whole number (steps, indexes): no ticks between them."""
    return all(isinstance(x, int) for line in chart.lines for x in line.xs)


def _script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>``, no ``<!--``."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(charts: Sequence[Chart], revs: Sequence[str], bundle: str, *, title: str) -> str:
    """The whole page: a heading, the revisions, then every chart."""
    specs = [chart_spec(chart, revs) for chart in charts]
    divs = "\n".join(
        f'<div class="chart" id="exq-chart-{i}" data-plot="{escape(chart.id)}" '
        f'data-lines="{len(chart.lines)}"></div>'
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
    bundle = str(vl_convert.javascript_bundle())
    try:
        atomic_write_text(path, bundle)
    except OSError:
        pass  # a read-only home: the next page builds the bundle again
    return bundle


def write_page(
    out_dir: Path, charts: Sequence[Chart], revs: Sequence[str], *, title: str = "exq plots"
) -> Path:
    """Write ``out_dir/index.html`` (atomically) and return its absolute path."""
    page = render_page(charts, revs, vega_bundle(), title=title)
    path = (out_dir / "index.html").absolute()
    try:
        atomic_write_text(path, page)
    except OSError as exc:
        raise ExqError(f"{path}: cannot write the plots page: {exc.strerror or exc}") from exc
    return path
