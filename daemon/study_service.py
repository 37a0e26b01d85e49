"""The studies' use cases, beside the queue's in :mod:`exq.daemon.service`:
queue a study (``exp run --queue --optimize``) and read how studies go
(``exq sweep status``, ``queue status``, ``exp show``).

Queueing a study writes no run: it checks the options and the space, snapshots
the workspace once (every trial starts from that snapshot, with its own
``-S`` edits), writes the study's row with ``refs/exq/study/<id>`` pointing at
the snapshot, and rings the daemon, which asks Optuna for trials as slots free
(:mod:`exq.daemon.study`). Reading needs neither Optuna nor the daemon: the
queue database holds each trial's run and the value Optuna was told.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exq.daemon.config import DaemonConfig
from exq.daemon.states import RunState, seen_state
from exq.daemon.store import NewRun
from exq.daemon.study_store import (
    TOLD_COMPLETE,
    TOLD_FAIL,
    NewStudy,
    StudyRecord,
    StudyStore,
    TrialRecord,
    study_ref,
)
from exq.engine.errors import ConfigError, ExperimentError, did_you_mean

if TYPE_CHECKING:
    from exq.daemon.options import RunOptions
    from exq.daemon.service import EnqueueRequest
    from exq.engine.experiments.study_spec import StudySpec

OPTUNA_HINT = "pip install 'exq[optuna]'"


def enqueue_study(
    request: EnqueueRequest,
    spec: StudySpec,
    config: DaemonConfig,
    *,
    options: RunOptions,
    executor: str | None,
    after: list[int],
    env: dict[str, str],
    root: Path | None,
    warn: Callable[[str], None] | None = None,
) -> StudyRecord:
    """Check a study's space and pipeline, snapshot the workspace, write the
    study's row; raises ``ExqError`` with nothing written. The caller rings
    the daemon."""
    from exq.engine.experiments.queue_snapshot import prepare_study
    from exq.engine.experiments.study_spec import frozen_texts, probe_point, space_of
    from exq.engine.git import Git
    from exq.engine.params.hydra_sweeps import conf_groups
    from exq.engine.run.project import open_project

    if importlib.util.find_spec("optuna") is None:
        raise ConfigError(
            "--optimize runs an Optuna study: Optuna is not installed", hint=OPTUNA_HINT
        )
    project = open_project(root)
    space = space_of(request.set_params, spec.sampler, conf_groups(project.root))
    if spec.sampler == "grid":
        check_grid(space, spec.trials)
    git = Git.open(project.root)
    from exq.daemon.service import check_untracked

    check_untracked(git.untracked_files(), force=request.force, warn=warn)
    names = (
        [] if request.name is None else [f"{request.name}-{k}" for k in range(1, spec.trials + 1)]
    )
    baseline, snapshot = prepare_study(
        project, git, names, probe_point(space), force=request.force, targets=request.targets
    )
    from exq.daemon.service import check_study_pipeline

    check_study_pipeline(
        git,
        snapshot,
        git.prefix_of(project.root),
        request.targets,
        spec.objective,
        prune=spec.pruner is not None,
    )
    run = {
        "targets": list(request.targets),
        "stage_jobs": request.stage_jobs,
        "executor": executor,
        "cpus": options.cpus,
        "gpus": options.gpus,
        "mem": options.mem,
        "priority": options.priority,
        "after": after,
        "timeout": options.timeout,
        "retries": options.retries,
        "retry_delay": options.retry_delay,
        "env": env,
    }
    study = NewStudy(
        name=request.name,
        repo=str(project.root),
        baseline=baseline,
        snapshot=snapshot,
        space=frozen_texts(request.set_params, space),
        spec=spec.to_json(),
        # Trials named automatically (study-<id>-<k>) may replace what an older
        # queue database's study of the same id left.
        template={"run": run, "replace": request.force or request.name is None},
        budget=spec.trials,
    )

    def point_ref(study_id: int) -> None:
        git.remove_ref_lock(study_ref(study_id))
        git.set_ref(study_ref(study_id), snapshot, message="exq: study")

    with StudyStore(config.db_path) as store:
        return store.create_study(study, on_id=point_ref)


def enqueue_fixed_study(
    config: DaemonConfig,
    spec: StudySpec,
    runs: list[NewRun],
    *,
    name: str | None,
    on_id: Callable[[int], None],
) -> list[int]:
    """Queue a grid or random sweep's runs (``--prune`` without ``--trials``) as
    the trials of a study that carries their points, so that the pruner sees
    the intermediate values of every run of the sweep. Nothing is asked of
    Optuna's sampler: each run gets a bare trial, its ``-S`` edits in the
    trial's ``params`` attribute. The study is ``name`` (the sweep's ``-n``),
    else ``study-<id>``. ``on_id`` points each run's queue ref, as for plain
    runs; the run ids, in order."""
    from dataclasses import replace

    from exq.daemon.study import import_optuna, optuna_name, storage_url
    from exq.engine.git import Git

    if importlib.util.find_spec("optuna") is None:
        raise ConfigError(
            "--prune judges runs with Optuna: Optuna is not installed", hint=OPTUNA_HINT
        )
    optuna = import_optuna()
    spec = replace(spec, trials=len(runs))
    first = runs[0]
    git = Git.open(first.repo)
    study = NewStudy(
        name=name,
        repo=first.repo,
        baseline=first.baseline,
        snapshot=first.snapshot,
        space=[],
        spec=spec.to_json(),
        template={"run": {}, "replace": False},
        budget=len(runs),
    )

    def point_ref(study_id: int) -> None:
        git.remove_ref_lock(study_ref(study_id))
        git.set_ref(study_ref(study_id), first.snapshot, message="exq: study")

    # Named before the transaction below: naming it may write to the queue database.
    storage = storage_url(config)

    def ask(study_id: int) -> list[tuple[int, int]]:
        # Optuna's own database: a bare trial per run, its -S edits as an attribute.
        handle = optuna.create_study(
            storage=storage,
            study_name=optuna_name(study_id),
            direction=spec.objective.direction,
            load_if_exists=True,
        )
        asked = []
        for run in runs:
            trial = handle.ask()
            trial.set_user_attr("params", list(run.params))
            asked.append((trial.number, trial._trial_id))
        return asked

    with StudyStore(config.db_path) as store:
        ids = store.create_fixed_study(study, runs, on_id=point_ref, ask=ask, on_run_id=on_id)
    return ids


@dataclass(frozen=True)
class Stopped:
    """What ``sweep stop`` did: the study, and its queued trials' runs cancelled."""

    study: StudyRecord
    cancelled: list[int]


def stop_study(config: DaemonConfig, key: str) -> Stopped:
    """Ask no more trials of a study and cancel its queued trials' runs (running
    ones go on: ``queue kill`` stops them); Optuna hears of each as failed and the
    study ends once its last run does. Raises ``ExperimentError`` for an unknown
    study or one that is no longer under way."""
    from exq.daemon.service import kill

    (status,) = study_status(config, key)
    study = status.study
    note = f"stopped by 'exq sweep stop' after {study.queued} of {study.budget} trials"
    with StudyStore(config.db_path) as store:
        if not store.stop_study(study.id, note):
            if study.state == "active":
                raise ExperimentError(
                    f"study '{study.name}' is stopped already: it ends with its running trials"
                )
            raise ExperimentError(f"study '{study.name}' is {study.state}: nothing to stop")
    queued = [str(t.run_id) for t in status.trials if t.state == RunState.QUEUED.value]
    cancelled = kill(config, queued, force=False) if queued else None
    done = [] if cancelled is None else cancelled.cancelled + cancelled.signalled
    return Stopped(study, sorted(done))


def check_grid(space: list[Any], trials: int) -> None:
    """The grid sampler runs each point once: refuse more trials than points."""
    size = 1
    for param in space:
        size *= len(param.dimension.values or [None])
    if trials > size:
        raise ConfigError(
            f"--trials {trials}: the grid has {size} points",
            hint=f"ask for {size} trials at most, or use another --sampler",
        )


# -- reading ---------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRow:
    """One trial as ``sweep status`` shows it."""

    trial: int
    run_id: int
    name: str | None  # the run's (None: removed from the queue)
    state: str  # the run's state, 'removed', or 'no-metric' (it ran, without the metric)
    params: list[str]
    value: float | None
    experiment: str | None  # the experiment ref of a run that succeeded


@dataclass(frozen=True)
class StudyStatus:
    """How a study goes: its counts by run state, and its best trial so far."""

    study: StudyRecord
    trials: list[TrialRow]

    @property
    def objective(self) -> str:
        return f"{self.study.spec['file']}:{self.study.spec['key']}"

    @property
    def maximize(self) -> bool:
        return bool(self.study.spec["maximize"])

    def count(self, *states: str) -> int:
        return sum(1 for t in self.trials if t.state in states)

    @property
    def best(self) -> TrialRow | None:
        scored = [t for t in self.trials if t.value is not None]
        if not scored:
            return None
        pick = max if self.maximize else min
        return pick(scored, key=lambda t: t.value if t.value is not None else 0.0)

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {
            "name": self.study.name,
            "id": self.study.id,
            "state": self.study.state,
            "error": self.study.error,
            "objective": self.objective,
            "direction": "maximize" if self.maximize else "minimize",
            "sampler": self.study.spec["sampler"],
            "seed": self.study.spec["seed"],
            "budget": self.study.budget,
            "queued": self.count(RunState.QUEUED.value),
            "running": self.count(RunState.RUNNING.value),
            "interrupted": self.count(RunState.INTERRUPTED.value),
            "done": self.count(RunState.SUCCESS.value),
            "pruned": self.count(RunState.PRUNED.value),
            "failed": self.count(
                RunState.FAILED.value,
                RunState.TIMEOUT.value,
                RunState.CANCELLED.value,
                "removed",
                NO_METRIC,
            ),
            "to_ask": self.study.budget - self.study.queued,
            "best": None if best is None else _trial_json(best),
            "trials": [_trial_json(t) for t in self.trials],
        }


def _trial_json(t: TrialRow) -> dict[str, Any]:
    return {
        "trial": t.trial,
        "run_id": t.run_id,
        "name": t.name,
        "state": t.state,
        "params": t.params,
        "value": t.value,
        "experiment": t.experiment,
    }


# A trial whose run succeeded without the study's metric: Optuna heard it failed.
NO_METRIC = "no-metric"


def trial_row(t: TrialRecord, daemon_alive: bool = True) -> TrialRow:
    run = t.run
    state = "removed" if run is None else seen_state(run, daemon_alive).value
    if state == RunState.SUCCESS.value and t.outcome == TOLD_FAIL:
        state = NO_METRIC
    return TrialRow(
        trial=t.trial,
        run_id=t.run_id,
        name=None if run is None else run.name,
        state=state,
        params=[] if run is None else list(run.params),
        value=t.value if t.outcome == TOLD_COMPLETE else None,
        experiment=None if run is None or run.state is not RunState.SUCCESS else run.experiment_ref,
    )


def study_status(
    config: DaemonConfig, key: str | None = None, *, daemon_alive: bool = True
) -> list[StudyStatus]:
    """The studies (or the one named ``key``: a name or an id), oldest first; none
    when there is no queue yet. Without a daemon alive, a trial left running is
    interrupted. Raises ``ExperimentError`` for an unknown ``key``."""
    if not config.db_path.exists():
        if key is not None:
            raise ExperimentError(f"no study '{key}'", hint="see 'exq sweep status'")
        return []
    with StudyStore(config.db_path) as store:
        if key is None:
            studies = store.studies()
        else:
            found = store.study(key)
            if found is None:
                names = [s.name for s in store.studies()]
                hint = did_you_mean(key, names) or "see 'exq sweep status'"
                raise ExperimentError(f"no study '{key}'", hint=hint)
            studies = [found]
        return [
            StudyStatus(s, [trial_row(t, daemon_alive) for t in store.trials(s.id)])
            for s in studies
        ]


def run_sweeps(config: DaemonConfig, repo: str | None = None) -> list[tuple[int, str, str, str]]:
    """(run id, baseline, name, sweep) of each run of ``repo`` that is a study's
    trial or a grid's or random search's point (for ``exp show`` and ``queue
    status``); none when there is no queue."""
    if not config.db_path.exists():
        return []
    with StudyStore(config.db_path) as store:
        return store.run_sweeps(repo)
