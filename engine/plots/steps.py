"""A run's logged metrics step by step, from the plots of its experiment commit.

Live loggers' histories (``<metric>.tsv`` with ``timestamp``, ``step`` and the
metric) are plots outs (a DVC 2 ``live:`` section's folder, dvclive's
``plots/metrics``), so the plots reader finds them in a commit, in git or in
the cache. ``exq queue show`` reads a finished run's steps so; a running
run's come from its worktree (:mod:`exq.engine.experiments.history`). Pure.
"""

from __future__ import annotations

import posixpath

from exq.engine.plots.model import STEP, RevPlots, to_number

StepHistory = dict[str, list[tuple[int, float]]]


def logged_steps(rev: RevPlots) -> StepHistory:
    """metric -> [(step, value)] of every logger history among ``rev``'s files."""
    history: StepHistory = {}
    for path, data in sorted(rev.files.items()):
        if not path.endswith(".tsv"):
            continue
        names = [
            k for k in (data.records[0] if data.records else {}) if k not in (STEP, "timestamp")
        ]
        if len(names) != 1 or STEP not in data.records[0]:
            continue  # not a logger's history: a table of its own
        points = []
        for record in data.records:
            step, value = to_number(record.get(STEP)), to_number(record.get(names[0]))
            if isinstance(step, int) and value is not None:
                points.append((step, float(value)))
        if points:
            history.setdefault(names[0] or posixpath.splitext(path)[0], points)
    return history
