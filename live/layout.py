"""Where a logger's files go: the three folder layouts that dvclive has used.

=========  =============================  ====================  =================================
layout     metric history                 summary               report
=========  =============================  ====================  =================================
flat       ``<dir>/<metric>.tsv``         ``<dir>.json``        ``<dir>_dvc_plots/index.html``
scalars    ``<dir>/scalars/<metric>.tsv`` ``<dir>.json``        ``<dir>/report.html``
plots      ``<dir>/plots/metrics/...tsv`` ``<dir>/metrics.json`` ``<dir>/report.html``
=========  =============================  ====================  =================================

``flat`` is dvclive 0.0-0.4 with DVC 2.0-2.8; ``scalars`` is dvclive 0.5-0.7
with DVC 2.9-2.10; ``plots`` is dvclive 1.x-3.x.  The report follows where
each dvclive version points: 0.2.2-0.6 at ``<dir>_dvc_plots/index.html`` (DVC
rendered it there), 0.7 and later at ``<dir>/report.html``, except that 0.7
under a DVC 2 ``live:`` section with ``html: true`` kept the DVC location.

The layout is chosen (``choose``) by the ``layout`` argument, else the
``EXQ_LIVE_LAYOUT`` variable (the runner sets it from the stage's outputs),
else, when resuming, by what the folder already holds, else ``flat``.
Pure path arithmetic plus one look at the disk in ``detect``; standard
library only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_LAYOUT = "EXQ_LIVE_LAYOUT"
LAYOUTS = ("flat", "scalars", "plots")
DVC_PLOTS_SUFFIX = "_dvc_plots"


@dataclass(frozen=True)
class Layout:
    """The file names of one logger folder in one layout."""

    name: str
    root: Path
    # dvclive 0.7 under a DVC 2 live section with html: DVC's report location
    dvc_report: bool = False

    @property
    def metrics_dir(self) -> Path:
        """The folder of the metric TSVs (names with ``/`` make sub-folders)."""
        if self.name == "scalars":
            return self.root / "scalars"
        if self.name == "plots":
            return self.root / "plots" / "metrics"
        return self.root

    @property
    def summary_path(self) -> Path:
        if self.name == "plots":
            return self.root / "metrics.json"
        return self.root.with_name(self.root.name + ".json")

    @property
    def report_path(self) -> Path:
        if self.name == "flat" or self.dvc_report:
            return dvc_report_path(self.root)
        return self.root / "report.html"

    @property
    def params_path(self) -> Path:
        return self.root / "params.yaml"


def dvc_report_path(root: Path) -> Path:
    """``<dir>_dvc_plots/index.html``: where DVC 2 rendered a live section's report."""
    return root.with_name(root.name + DVC_PLOTS_SUFFIX) / "index.html"


def choose(
    root: Path,
    layout: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    resume: bool = False,
) -> str:
    """The layout name for a logger at ``root``; ValueError on an unknown name."""
    env = os.environ if environ is None else environ
    for given, where in ((layout, "layout"), (env.get(ENV_LAYOUT) or None, ENV_LAYOUT)):
        if given is not None:
            if given not in LAYOUTS:
                raise ValueError(f"{where}={given!r}: expected one of {', '.join(LAYOUTS)}")
            return given
    if resume:
        found = detect(root)
        if found is not None:
            return found
    return "flat"


def detect(root: Path) -> str | None:
    """The layout whose files ``root`` holds, if any (resume keeps a run's layout)."""
    if (root / "plots" / "metrics").is_dir() or (root / "metrics.json").is_file():
        return "plots"
    if (root / "scalars").is_dir():
        return "scalars"
    return None


def history_dirs(root: Path) -> list[Path]:
    """Every folder of ``root`` that may hold metric TSVs, newest layout first.

    For readers (``exq plots``, the report of a DVC 2 live section): a TSV
    directly in ``root`` is a flat-layout metric.
    """
    return [root / "plots" / "metrics", root / "scalars", root]
