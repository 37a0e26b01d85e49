"""A run's metrics over time: per step from its live loggers' histories, and per
checkpoint from its experiment's chain of commits (``exq queue show``).

Per step, each ``<metric>.tsv`` of the loggers the stages name (read from a
working tree, where a running run writes them); per checkpoint, the metrics
``exp show`` would show for each commit of the chain, oldest first. A row
being written at the moment of reading is left for the next look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from exq.engine.errors import ExqError
from exq.engine.experiments.chains import chain_of
from exq.engine.experiments.collect import Collector
from exq.engine.experiments.progress import live_roots
from exq.engine.git import Git
from exq.live import layout as layouts

StepHistory = dict[str, list[tuple[int, float]]]
"""metric name (as the logger names it: ``loss``, ``train/loss``) -> [(step, value)]"""


@dataclass(frozen=True)
class CheckpointPoint:
    """One checkpoint commit of a run's chain, and the metrics it holds."""

    sha: str
    step: int | None
    created: datetime
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "step": self.step,
            "created": self.created.isoformat(),
            "metrics": self.metrics,
        }


def step_history(worktree: Path) -> StepHistory:
    """Every metric the live loggers of ``worktree`` logged, step by step."""
    history: StepHistory = {}
    for root in live_roots(worktree) if worktree.is_dir() else []:
        folder = layouts.Layout(layouts.detect(root) or "flat", root).metrics_dir
        for tsv in sorted(folder.rglob("*.tsv")) if folder.is_dir() else []:
            name = tsv.relative_to(folder).with_suffix("").as_posix()
            try:
                text = tsv.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            points = parse_tsv(text)
            if points:
                history.setdefault(name, points)
    return history


def parse_tsv(text: str) -> list[tuple[int, float]]:
    """(step, value) of a logger's ``timestamp<TAB>step<TAB>value`` rows; pure.

    The text after the last newline is a row being written: not yet a row.
    """
    points = []
    for line in text.split("\n")[1:-1]:
        cells = line.split("\t")
        try:
            step, value = int(cells[1]), float(cells[2])
        except (IndexError, ValueError):
            continue
        if math.isfinite(value):
            points.append((step, value))
    return points


def checkpoint_history(
    git: Git, collector: Collector, tip: str, baseline: str
) -> list[CheckpointPoint]:
    """The commits of the chain ending at ``tip``, oldest first, with their numeric
    metrics; [] when ``tip`` is not a checkpoint chain (or is gone)."""
    try:
        chain = chain_of(git, tip, baseline)
    except ExqError:
        return []
    points = []
    for commit in reversed(chain):
        data = collector.commit(commit.info.sha)
        metrics = {
            file: numbers
            for file, values in data.metrics.items()
            if (numbers := {k: float(v) for k, v in values.items() if _number(v)})
        }
        points.append(CheckpointPoint(commit.info.sha, commit.step, commit.info.time, metrics))
    return points


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
