"""How far a running experiment has got, read from the files in its working tree.

A run's worktree holds what its training code logs as it goes: the live
loggers' folders (``exq.live`` or any dvclive, in the three layouts of
:mod:`exq.live.layout`) and the pipeline's metrics files. ``read_progress``
reads them into a :class:`Progress`: the latest step, the total the script
declared (``Live(total_steps=N)``: exq.live writes it, with its step, to the
file that ``EXQ_PROGRESS_FILE`` names, outside the worktree, so that the
run's outputs stay what dvclive would write), the latest value of every
numeric metric and when any of it last changed.

The loggers' folders are found from the stages: each ``live:`` section and
each out that is a logger folder (or the ``<dir>.json``/``<dir>/metrics.json``
summary of one). Files half-written at the moment of reading are skipped: the
next look reads them whole, and so are files older than ``since`` (the moment
the run's worktree was ready: they came with its snapshot, such as the
baseline's results kept in git). Nothing here writes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exq.engine.errors import ExqError
from exq.engine.experiments.collect import Collector
from exq.engine.spec.graph import repo_path
from exq.engine.spec.loading import find_dvcfiles
from exq.engine.spec.paramfiles import DiskSource
from exq.engine.spec.templating import load_dvcfile
from exq.live import layout as layouts


@dataclass
class Progress:
    """What a running experiment's files say of it; None where they say nothing."""

    step: int | None = None
    total_steps: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    updated: float | None = None  # epoch seconds of the newest file read
    since: float | None = None  # files older than this are not the run's

    def seen(self, path: Path) -> None:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return
        self.updated = mtime if self.updated is None else max(self.updated, mtime)

    def stale(self, path: Path) -> bool:
        """Whether ``path`` is older than the run (or gone): to be left unread."""
        if self.since is None:
            return False
        try:
            return path.stat().st_mtime < self.since
        except OSError:
            return True


def read_progress(
    worktree: Path, facts: Path | None = None, since: float | None = None
) -> Progress:
    """The step, total, metrics and last change of the run in ``worktree``;
    ``facts``: the file exq.live keeps its step and declared total in; ``since``:
    the epoch seconds before which a file is not the run's (None: all are)."""
    progress = Progress(since=since)
    if worktree.is_dir():
        for root in live_roots(worktree):
            _read_logger(root, progress)
        _read_pipeline_metrics(worktree, progress)
    if facts is not None:
        _read_facts(facts, progress)
    return progress


def _read_facts(path: Path, progress: Progress) -> None:
    """What exq.live said of itself: its step (a logger the stages do not name
    is seen through it only) and the total it declared."""
    facts = None if progress.stale(path) else _read_json(path)
    if facts is None:
        return
    step, total = _int(facts.get("step")), _int(facts.get("total_steps"))
    if step is not None and step >= (progress.step or 0):
        progress.step = step
        progress.seen(path)
    if total is not None and total > 0:
        progress.total_steps = total


def _int(value: Any) -> int | None:
    """``value`` if it is an int (a JSON ``true`` is none), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def live_roots(worktree: Path) -> list[Path]:
    """The logger folders the stages of ``worktree`` name, in stage order."""
    roots: list[Path] = []
    source = DiskSource(worktree)
    for dvcfile in find_dvcfiles(worktree):
        try:
            stages = load_dvcfile(source, dvcfile)
        except ExqError:  # the run reports a broken dvc.yaml itself
            continue
        for stage in stages:
            paths = [stage.live.path] if stage.live is not None else []
            paths += [out.path for out in stage.outs]
            for path in paths:
                try:
                    candidate = logger_root(worktree / repo_path(stage, path))
                except ExqError:
                    continue
                if candidate is not None and candidate not in roots:
                    roots.append(candidate)
    return roots


def logger_root(path: Path) -> Path | None:
    """The logger folder that an out at ``path`` is, is in, or is the summary of."""
    if path.is_dir() and path.name == "metrics" and path.parent.name == "plots":
        return path.parent.parent  # dvclive 1.x+: <dir>/plots/metrics
    if path.is_dir() and (
        path.name == "scalars" or (path.name == "plots" and (path / "metrics").is_dir())
    ):
        return path.parent  # <dir>/scalars, or <dir>/plots of dvclive 1.x+
    if path.is_dir():
        has_tsv = any(d.is_dir() and any(d.rglob("*.tsv")) for d in layouts.history_dirs(path))
        return path if has_tsv or layouts.detect(path) else None
    if path.name == "metrics.json" and (path.parent / "plots" / "metrics").is_dir():
        return path.parent
    if path.suffix == ".json" and path.with_suffix("").is_dir():
        return path.with_suffix("")
    return None


def _read_logger(root: Path, progress: Progress) -> None:
    """A logger folder: the summary's step and metrics; else the TSVs' last rows."""
    layout = layouts.Layout(layouts.detect(root) or "flat", root)
    summary = None if progress.stale(layout.summary_path) else _read_json(layout.summary_path)
    if summary is not None:
        progress.seen(layout.summary_path)
        step = _int(summary.get("step"))
        if step is not None:
            progress.step = max(step, progress.step or 0)
        for name, value in _numbers(summary).items():
            if name != "step":
                progress.metrics.setdefault(name, value)
    else:
        _read_histories(layout.metrics_dir, progress)


def _read_histories(folder: Path, progress: Progress) -> None:
    """The last row of every ``<metric>.tsv``: its step and value."""
    if not folder.is_dir():
        return
    for tsv in sorted(folder.rglob("*.tsv")):
        last = None if progress.stale(tsv) else _last_line(tsv)
        if last is None:
            continue
        cells = last.split("\t")
        try:
            step, value = int(cells[1]), float(cells[2])
        except (IndexError, ValueError):  # a header only, or a row half-written
            continue
        progress.seen(tsv)
        progress.step = max(step, progress.step or 0)
        name = tsv.relative_to(folder).with_suffix("").as_posix()
        if math.isfinite(value):
            progress.metrics.setdefault(name, value)


def _last_line(path: Path, tail: int = 4096) -> str | None:
    try:
        with open(path, "rb") as stream:
            stream.seek(0, 2)
            size = stream.tell()
            stream.seek(max(size - tail, 0))
            lines = stream.read().decode("utf-8", "replace").split("\n")
    except OSError:
        return None
    # The text after the last newline is a row being written: not yet a row.
    whole = lines[:-1]
    return whole[-1] if len(whole) > 1 else None  # one line is the header


def _read_pipeline_metrics(worktree: Path, progress: Progress) -> None:
    """The metrics files the pipeline declares, as ``exp show`` reads them."""
    data = Collector(None, worktree).workspace()
    for path, values in data.metrics.items():
        found = _numbers(values)
        if not found or progress.stale(worktree / path):
            continue
        progress.seen(worktree / path)
        step = found.pop("step", None)
        if step is not None and step == int(step) and progress.step is None:
            progress.step = int(step)
        for name, value in found.items():
            progress.metrics.setdefault(name, value)


def _numbers(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested or dotted) mapping, by dotted name."""
    found: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found.update(_numbers(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                found[name] = value
    return found


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, or caught half-written
        return None
    return data if isinstance(data, dict) else None


def live_reports(worktree: Path) -> list[Path]:
    """The live loggers' HTML reports that exist in ``worktree`` (in each layout's place)."""
    found = []
    for root in live_roots(worktree) if worktree.is_dir() else []:
        for report in (layouts.dvc_report_path(root), root / "report.html"):
            if report.is_file() and report not in found:
                found.append(report)
    return found
