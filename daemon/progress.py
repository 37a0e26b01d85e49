"""How far the running runs have got, and when they and the queue should be done.

``run_progress`` reads a local run's worktree (the engine's
:func:`~exq.engine.experiments.progress.read_progress`: live loggers, metrics
files, exq.live's progress file) and adds the time left. The estimates are
pure functions over plain numbers:

* a run's time left comes from its steps when the script declared a total
  (time so far / steps done x steps to go); else from the finished runs of
  the same sweep (same repository and baseline): their median duration less
  the time so far;
* the queue drains when the running runs' time left plus, for each queued
  run, the median duration of finished runs of its repository, spread over
  the slots, has passed.

An estimate is None when there is nothing to base it on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from exq.daemon.config import DaemonConfig
from exq.daemon.states import RunRecord, RunState


@dataclass(frozen=True)
class RunProgress:
    """What ``queue status`` shows of a running run beyond its row."""

    step: int | None = None
    total_steps: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    updated: datetime | None = None
    eta_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "metrics": dict(self.metrics),
            "updated": None if self.updated is None else self.updated.isoformat(),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
        }


def run_progress(
    config: DaemonConfig, run: RunRecord, runs: Sequence[RunRecord], now: datetime
) -> RunProgress:
    """The progress of ``run`` (running) from its files; ``runs``: the queue, for the
    durations of its sweep's finished runs."""
    # The engine's pipeline readers only when a run is running: ``queue status``
    # of a queue with nothing running stays clear of them.
    from exq.engine.experiments.progress import read_progress

    worktree = config.worktree_path(run.id, run.attempts)
    read = read_progress(worktree, config.progress_path(run.id), _ready_since(config, run))
    # A checkpoint run that logs nothing the stages name still counts its checkpoints.
    step = read.step if read.step is not None else (run.checkpoints or None)
    elapsed = _elapsed(run, now)
    eta = run_eta(elapsed, step, read.total_steps, sweep_durations(run, runs))
    updated = None if read.updated is None else datetime.fromtimestamp(read.updated, UTC)
    return RunProgress(step, read.total_steps, read.metrics, updated, eta)


def _ready_since(config: DaemonConfig, run: RunRecord) -> float:
    """When the attempt's worktree was ready: what is older came with its snapshot
    (the baseline's results kept in git) or an earlier attempt. Not ready yet:
    nothing there is the attempt's."""
    try:
        return config.ready_path(run.id).stat().st_mtime
    except OSError:
        return math.inf


def progress_of(
    config: DaemonConfig, runs: Sequence[RunRecord], now: datetime
) -> dict[int, RunProgress]:
    """The progress of every running run of ``runs``, by run id."""
    return {
        run.id: run_progress(config, run, runs, now)
        for run in runs
        if run.state is RunState.RUNNING
    }


def _elapsed(run: RunRecord, now: datetime) -> float:
    return 0.0 if run.started is None else max((now - run.started).total_seconds(), 0.0)


def duration_of(run: RunRecord) -> float | None:
    """A successful run's duration, in seconds."""
    if run.state is not RunState.SUCCESS or run.started is None or run.finished is None:
        return None
    return max((run.finished - run.started).total_seconds(), 0.0)


def sweep_durations(run: RunRecord, runs: Sequence[RunRecord]) -> list[float]:
    """Durations of the finished runs of ``run``'s sweep: same repository and baseline."""
    found = []
    for other in runs:
        if other.repo == run.repo and other.baseline == run.baseline:
            seconds = duration_of(other)
            if seconds is not None:
                found.append(seconds)
    return found


def run_eta(
    elapsed: float, step: int | None, total_steps: int | None, durations: Sequence[float]
) -> float | None:
    """Seconds left for a run ``elapsed`` seconds in, at ``step`` (0-based, the last
    one logged) of ``total_steps``; else from its sweep's finished ``durations``."""
    if step is not None and total_steps:
        done = step + 1
        if done >= total_steps:
            return 0.0
        return elapsed / done * (total_steps - done)
    if durations:
        return max(_median(durations) - elapsed, 0.0)
    return None


def queue_eta(
    runs: Sequence[RunRecord],
    progress: dict[int, RunProgress],
    slots: int | None,
    *,
    paused: bool = False,
) -> float | None:
    """Seconds until the queue drains: the running runs' time left and the queued
    runs' expected durations (median of their repository's finished runs),
    spread over ``slots``. 0 when nothing is running or queued; None when a part
    has no estimate, no daemon gives the slots, or a paused daemon holds queued
    runs (they start only once it is resumed)."""
    if not slots:
        return None
    if paused and any(run.state is RunState.QUEUED for run in runs):
        return None
    work = 0.0
    for run in runs:
        if run.state is RunState.RUNNING:
            left = progress[run.id].eta_seconds if run.id in progress else None
        elif run.state is RunState.QUEUED:
            durations = [
                d for o in runs if o.repo == run.repo and (d := duration_of(o)) is not None
            ]
            left = _median(durations) if durations else None
        else:
            continue
        if left is None:
            return None
        work += left
    return work / slots


def _median(values: Sequence[float]) -> float:
    """statistics.median, without importing statistics (and fractions, decimal,
    random) into every ``queue status``."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
