"""Early stopping at checkpoints: a sweep's pruner judges each checkpoint of its runs.

A sweep queued with ``--prune median|asha|hyperband`` is a study (see
:mod:`exq.daemon.study`): an optimized sweep's, or for a grid or random sweep
one whose trials carry the sweep's fixed points, so the pruner sees the
intermediate values of every run of the sweep. At each checkpoint of a run
the scheduler asks :meth:`Pruning.judge`: the objective's value at that step
is read from the checkpoint commit (a checkpoint commits the run's metrics
files), reported to the run's Optuna trial at that step, and the study's
pruner says whether to stop. A run told to stop is stopped by the scheduler
at that checkpoint and ends ``pruned``, its chain kept; its study tells Optuna
it was pruned. A retried pruned run (``exq queue retry``: the user
disagreed) is judged no more: its trial has ended. Runs on a Ray cluster
are not judged.

The pruners are Optuna's, with Optuna's defaults: ``median``
(``MedianPruner``: no pruning before 5 trials completed), ``asha``
(``SuccessiveHalvingPruner``: rungs from the steps of the first completed
trial) and ``hyperband`` (``HyperbandPruner``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import structlog

from exq.daemon.config import DaemonConfig
from exq.daemon.states import RunRecord
from exq.daemon.study import Studies, import_optuna
from exq.daemon.study_store import StudyStore, TrialRecord
from exq.engine.errors import ExqError, describe_failure
from exq.engine.experiments.study_spec import Objective, StudySpec, metric_value
from exq.engine.run.callbacks import CheckpointEvent


def make_pruner(optuna: Any, name: str) -> Any:
    """Optuna's pruner for ``name`` (one of
    :data:`~exq.engine.experiments.study_spec.PRUNERS`)."""
    pruners = optuna.pruners
    if name == "median":
        return pruners.MedianPruner()
    if name == "asha":
        return pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return pruners.HyperbandPruner()
    raise ValueError(f"unknown pruner {name!r}")


@dataclass(frozen=True)
class Verdict:
    """A pruner's decision to stop a run, and what it judged."""

    step: int
    value: float
    metric: str  # FILE:KEY
    pruner: str

    def reason(self) -> str:
        """The pruned run's error text: the step, the value and the pruner."""
        return f"pruned at step {self.step}: {self.metric} = {self.value:.6g} ({self.pruner})"


def commit_metric(repo: str, sha: str, objective: Objective) -> float:
    """The objective's value in commit ``sha`` (a checkpoint commits the metrics
    files as they were at its step); ``ExqError`` when it is not there."""
    from exq.engine.git import Git

    git = Git.open(repo)
    path = f"{git.prefix_of(repo)}/{objective.file}".lstrip("/")
    return metric_value(git.read_blob(sha, path), objective)


def report_step(event_step: int | None, count: int) -> int:
    """The step a checkpoint is reported at: the one the script said, else its
    position in the run's chain (0 for the first checkpoint)."""
    return event_step if event_step is not None else max(count - 1, 0)


class Pruning:
    """The daemon's side of pruning; the scheduler holds one and asks :meth:`judge`
    at each checkpoint. Which runs are pruned trials is looked up once per
    attempt, so a run of no pruned sweep costs one query per attempt."""

    def __init__(
        self, studies: Studies, config: DaemonConfig, log: structlog.typing.FilteringBoundLogger
    ) -> None:
        self._studies = studies
        self._config = config
        self._log = log
        self._judged: dict[tuple[int, int], _Judged | None] = {}  # by (run id, attempt)

    async def judge(self, record: RunRecord, event: CheckpointEvent) -> Verdict | None:
        """Report the checkpoint's value to the run's trial; the verdict when its
        pruner says stop, else None. Never raises: a checkpoint it cannot judge
        (the metric missing at that step, Optuna failing) is logged and let go."""
        try:
            return await anyio.to_thread.run_sync(self._judge, record, event)
        except Exception as exc:  # a database or Optuna failure: the run goes on
            self._log.warning("prune.unjudged", sha=event.sha, error=describe_failure(exc))
            return None

    def forget(self, record: RunRecord) -> None:
        """The attempt ended: drop what was looked up for it."""
        self._judged.pop((record.id, record.attempts), None)

    def _judge(self, record: RunRecord, event: CheckpointEvent) -> Verdict | None:
        key = (record.id, record.attempts)
        if key not in self._judged:
            self._judged[key] = self._look_up(record)
        judged = self._judged[key]
        if judged is None:
            return None
        step = report_step(event.step, event.count)
        try:
            value = commit_metric(record.repo, event.sha, judged.spec.objective)
        except ExqError as exc:  # not logged at this step: nothing to judge
            self._log.info("prune.no_value", step=step, error=str(exc))
            return None
        trial = self._studies.optuna_trial(judged.trial, pruner=judged.pruner)
        trial.report(value, step)
        if not trial.should_prune():
            self._log.info("prune.kept", step=step, value=value)
            return None
        return Verdict(step, value, str(judged.spec.objective), judged.spec.pruner or "")

    def _look_up(self, record: RunRecord) -> _Judged | None:
        """The run's trial and its study's pruner; None for a run no pruner judges
        (no trial, no --prune, or a trial that ended: a retried pruned run)."""
        with StudyStore(self._config.db_path) as store:
            trial = store.trial_of_run(record.id)
            study = store.study(trial.study_id) if trial is not None else None
        if trial is None or study is None or trial.outcome is not None:
            return None
        spec = StudySpec.from_json(study.spec)
        if spec.pruner is None:
            return None
        optuna = import_optuna()
        return _Judged(trial, spec, make_pruner(optuna, spec.pruner))


@dataclass(frozen=True)
class _Judged:
    trial: TrialRecord
    spec: StudySpec
    pruner: Any
