"""The plots page: one HTML file, a Vega-Lite chart per plot, that works offline.

Charts are Vega-Lite specs (the grammar DVC's own plots use) drawn in the
browser by vega-embed as SVG. The JavaScript of Vega, Vega-Lite and
vega-embed comes from the ``vl-convert-python`` wheel, which ships them
bundled: the page inlines that bundle, so it loads no script, style or font
from the network. Building the bundle starts a JavaScript runtime (about two
seconds), so it is kept in the user's cache folder, one file per
vl-convert version.

The charts' specs are ``exq.engine.plots.templates``'. Images are files
beside the page (``static/``), each image path a row of its revisions.
``render_page`` is pure; ``vega_bundle``, ``write_images`` and ``write_page``
do the I/O.
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
from exq.engine.plots.model import Chart, RevPlots
from exq.engine.plots.templates import chart_spec
from exq.engine.writes import atomic_write_bytes, atomic_write_text

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
    intro_html: str = "",
) -> str:
    """The whole page: a heading, ``intro_html`` (already escaped), the revisions,
    every chart, then the images."""
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
        f"<h1>{escape(title)}</h1>\n{intro_html}"
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
    intro_html: str = "",
) -> Path:
    """Write ``out_dir/index.html`` (atomically) and return its absolute path."""
    page = render_page(
        charts, revs, vega_bundle(), title=title, images=images, intro_html=intro_html
    )
    path = (out_dir / "index.html").absolute()
    try:
        atomic_write_text(path, page)
    except OSError as exc:
        raise ExqError(f"{path}: cannot write the plots page: {exc.strerror or exc}") from exc
    return path
