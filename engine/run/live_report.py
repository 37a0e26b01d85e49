"""The report of a DVC 2 ``live:`` section, rendered when a dvclive 0.x logger asks.

dvclive 0.0-0.6 never write a report themselves: after each step they touch
``.dvc/tmp/DVC_LIVE`` and DVC 2 renders the folder's history into
``<folder>_dvc_plots/index.html``.  exq does the same, at each checkpoint and
when the command ends, with exq.live's own page (so a real dvclive and
``exq.live`` give one report, in one place).  exq.live itself never asks: it
writes its report directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exq.engine.spec.stage import Stage

SIGNAL = Path(".dvc") / "tmp" / "DVC_LIVE"
REFRESH_SECONDS = 5


def render_requested_report(
    root: Path, stage: Stage, *, final: bool, env: Mapping[str, str] | None = None
) -> bool:
    """Render the stage's live report if a logger touched ``DVC_LIVE``; True if it did.
    ``env``: the stage's environment (the experiment's name and params head the page)."""
    signal = root / SIGNAL
    live = stage.live
    if live is None or not live.html or not signal.exists():
        return False
    # exq.live (its report page) only when a logger asked: most stages have no live section
    from exq.live import files
    from exq.live.env import experiment_heading
    from exq.live.report import render_report

    folder = root / stage.wdir / live.path
    experiment, edits = experiment_heading(env)
    page = render_report(
        folder.name,
        _summary(folder),
        _history(folder),
        refresh_seconds=None if final else REFRESH_SECONDS,
        experiment=experiment,
        params=edits,
    )
    files.write_atomic(root / stage.wdir / live.html_path, page)
    signal.unlink(missing_ok=True)
    return True


def _history(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every metric's (step, value) points, in whichever layout the logger wrote."""
    from exq.live import files
    from exq.live.layout import history_dirs

    series: dict[str, list[tuple[int, float]]] = {}
    dirs = history_dirs(folder)
    for index, where in enumerate(dirs):
        for name, path in files.iter_tsv(where, skip=dirs[:index]):
            if name not in series:
                series[name] = [(row[1], float(row[2])) for row in files.read_tsv(path)]
    return series


def _summary(folder: Path) -> dict[str, Any]:
    for path in (folder.with_name(folder.name + ".json"), folder / "metrics.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}
