"""Studies in the daemon: ask Optuna for trials as slots free, tell it how they ended.

A study (``exp run --queue --optimize FILE:KEY --trials N``) is a row of the
queue database (:mod:`exq.daemon.study_store`) and an Optuna study in Optuna's
RDB storage, ``studies-*.db`` in the daemon's state folder (:func:`storage_url`),
named :func:`optuna_name` of the row's id. The scheduler calls
:meth:`Studies.step` at each reconcile with free slots: it tells Optuna the
end of each trial whose run ended (the objective read from the run's
experiment commit; a failed, timed-out, cancelled or removed run as failed),
then asks Optuna for as many new trials as there are slots no queued run will
take, and queues each as a run ``NAME-<k>`` whose snapshot is the study's base
snapshot with the trial's ``-S`` edits (never the workspace as it is now).

Crash safety: Optuna's ask is durable before the run is queued; queueing is
one transaction that also moves the study's ``last_trial`` (see
:mod:`exq.daemon.study_store`). A trial Optuna holds as running with a number
above ``last_trial`` was asked but never queued: the next step queues it
(rather than asking again), or tells it failed if the daemon died before all
its params were drawn. A run that ended before Optuna heard of it is told at
the next step. So a ``kill -9`` at any point loses no trial and runs none twice.

For pruning at checkpoints, a run's trial is found with
``StudyStore(config.db_path).trial_of_run(run_id)`` (a :class:`TrialRecord`:
``study_id``, Optuna's ``trial`` number and ``optuna_id``; None for a run that
is no trial), and its Optuna trial with :meth:`Studies.optuna_trial`
(``trial.report(value, step)``, ``trial.should_prune()``). A run that ends in
a state named ``pruned`` is told to Optuna as pruned.

Optuna (the ``exq[optuna]`` extra) is imported only when a study exists.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from exq.daemon.config import DaemonConfig
from exq.daemon.states import ENDED, RunState
from exq.daemon.store import NewRun, queue_ref
from exq.daemon.store_async import AsyncStore
from exq.daemon.study_store import (
    STUDY_DONE,
    STUDY_FAILED,
    TOLD_COMPLETE,
    TOLD_FAIL,
    TOLD_PRUNED,
    StudyRecord,
    StudyStore,
    TrialRecord,
)
from exq.engine.errors import ConfigError, ExqError
from exq.engine.experiments.study_spec import (
    FIXED,
    MetricMissing,
    Param,
    StudySpec,
    metric_value,
    overrides_of,
    space_of,
)

if TYPE_CHECKING:
    import optuna

OPTUNA_HINT = "pip install 'exq[optuna]'"
# End states after which a trial's run will not run again by itself
# (``interrupted`` is queued again when the daemon comes back).
FINAL = frozenset(ENDED - {RunState.INTERRUPTED})


def storage_url(config: DaemonConfig) -> str:
    """Optuna's RDB storage of the studies of this queue: a SQLite file in the
    state folder, ``studies-<12 hex>.db``, named in the queue database. A queue
    database moved away (to start an empty queue) takes its studies with it: a
    new study 1 never loads the old study 1's trials."""
    with StudyStore(config.db_path) as store:
        name = store.studies_file()
    return f"sqlite:///{config.state_dir / name}"


def optuna_name(study_id: int) -> str:
    return f"exq-{study_id}"


def import_optuna() -> Any:
    """Optuna, quiet; ``ConfigError`` naming the extra when it is missing."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("studies need Optuna", hint=OPTUNA_HINT) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass
class _Loaded:
    """A study's settings as the daemon uses them, read once."""

    spec: StudySpec
    space: list[Param]


class Studies:
    """The daemon's side of studies; the scheduler holds one and calls :meth:`step`."""

    def __init__(
        self, store: AsyncStore, config: DaemonConfig, log: structlog.typing.FilteringBoundLogger
    ) -> None:
        self._store = store
        self._config = config
        self._log = log
        self._storage: Any = None
        self._storage_lock = threading.Lock()
        self._loaded: dict[int, _Loaded] = {}

    async def step(self, free_slots: int) -> int:
        """Tell Optuna of ended trials, queue new ones for up to ``free_slots``
        slots that no queued run will take; how many were queued."""
        if free_slots <= 0 or not await self._store.has_active_study():
            return 0
        try:
            return await anyio.to_thread.run_sync(self._step, free_slots)
        except Exception:  # a database or Optuna failure: the queue goes on; tried again
            self._log.exception("study.step_crashed")
            return 0

    def _step(self, free_slots: int) -> int:
        queued = 0
        with StudyStore(self._config.db_path) as store:
            free = free_slots - store.waiting_runs()
            for study in store.studies(active=True):
                try:
                    added = self._step_study(store, study, max(free - queued, 0))
                except ExqError as exc:
                    store.end_study(study.id, STUDY_FAILED, str(exc))
                    self._log.warning("study.failed", study=study.name, error=str(exc))
                    continue
                queued += added
        return queued

    def _step_study(self, store: StudyStore, study: StudyRecord, free: int) -> int:
        """Tell, then ask, for one study; Optuna is loaded only when there is
        something to do. The study is done once every trial is queued and told."""
        trials = store.trials(study.id)
        ended = [t for t in trials if t.outcome is None and (t.run is None or t.run.state in FINAL)]
        room = min(free, study.budget - study.queued)
        added = 0
        if ended or room > 0:
            optuna = import_optuna()
            loaded = self._load(study)
            handle = self._optuna_study(study, loaded, seed_offset=0)
            for trial in ended:
                self._tell(store, study, loaded, handle, trial)
            while added < room and self._queue_next(store, study, loaded, optuna):
                added += 1
        told = len(ended) + sum(1 for t in trials if t.outcome is not None)
        if study.queued + added >= study.budget and told >= study.budget:
            if all(t.outcome is not None for t in store.trials(study.id)):
                store.end_study(study.id, STUDY_DONE)
                self._log.info("study.done", study=study.name, trials=study.budget)
        return added

    # -- asking ----------------------------------------------------------------

    def _queue_next(
        self, store: StudyStore, study: StudyRecord, loaded: _Loaded, optuna: Any
    ) -> bool:
        """Queue the trial asked but not queued before a crash, else a new one."""
        fresh = store.study(study.id)
        if fresh is None or fresh.state != "active":
            return False
        handle = self._optuna_study(study, loaded, seed_offset=None)
        trial = self._orphan(fresh, loaded, handle, optuna)
        if trial is None:
            trial = handle.ask(self._distributions(loaded, optuna))
        try:
            run_id = self._enqueue(store, fresh, loaded, trial)
        except Exception:  # never queued: Optuna must not wait for it
            handle.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            raise
        if run_id is None:  # the study ended meanwhile: this trial will not run
            handle.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            return False
        self._log.info("study.trial_queued", study=study.name, trial=trial.number, run_id=run_id)
        return True

    def _enqueue(
        self, store: StudyStore, study: StudyRecord, loaded: _Loaded, trial: Any
    ) -> int | None:
        """Queue Optuna's ``trial`` as the study's next run (see
        :meth:`StudyStore.enqueue_trial`); its run id, None if the study took no more."""
        from exq.engine.git import Git

        overrides = overrides_of(loaded.space, trial.params)
        run = self._trial_run(study, overrides, study.queued + 1)
        git = Git.open(study.repo)

        def point_ref(run_id: int) -> None:
            # Inside the insert transaction, as for any enqueue (service.enqueue).
            git.remove_ref_lock(queue_ref(run_id))
            git.set_ref(queue_ref(run_id), run.snapshot, message="exq: queued trial")

        return store.enqueue_trial(study.id, trial.number, trial._trial_id, run, on_id=point_ref)

    def _orphan(
        self, study: StudyRecord, loaded: _Loaded, handle: Any, optuna: Any
    ) -> optuna.trial.FrozenTrial | None:
        """The trial Optuna gave out after the last one queued, if the daemon died
        before queueing it; one whose params were not all drawn is told failed."""
        running = handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        heads = {p.head for p in loaded.space if not p.fixed}
        for trial in sorted(running, key=lambda t: t.number):
            if trial.number <= study.last_trial:
                continue
            if heads <= set(trial.params):
                self._log.info("study.trial_recovered", study=study.name, trial=trial.number)
                return trial
            handle.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        return None

    def _trial_run(self, study: StudyRecord, overrides: list[str], index: int) -> NewRun:
        from exq.engine.experiments.queue_snapshot import trial_snapshot
        from exq.engine.git import Git

        git = Git.open(study.repo)
        template = dict(study.template["run"])
        snapshot = trial_snapshot(
            git,
            study.snapshot,
            study.baseline,
            git.prefix_of(study.repo),
            overrides,
            replace=bool(study.template.get("replace")),
        )
        return NewRun(
            repo=study.repo,
            baseline=study.baseline,
            snapshot=snapshot,
            name=f"{study.name}-{index}",
            params=overrides,
            **template,
        )

    def _distributions(self, loaded: _Loaded, optuna: Any) -> dict[str, Any]:
        dist = optuna.distributions
        out: dict[str, Any] = {}
        for param in loaded.space:
            d = param.dimension
            if param.fixed:
                continue
            if d.values is not None:
                out[param.head] = dist.CategoricalDistribution(param.choices())
            elif d.integer:
                out[param.head] = dist.IntDistribution(int(d.low), int(d.high), log=d.log)
            else:
                out[param.head] = dist.FloatDistribution(d.low, d.high, log=d.log)
        return out

    # -- telling ---------------------------------------------------------------

    def _tell(
        self, store: StudyStore, study: StudyRecord, loaded: _Loaded, handle: Any, t: TrialRecord
    ) -> None:
        """Tell Optuna how a trial's run ended, and record it."""
        from optuna.trial import TrialState

        value: float | None = None
        state = TrialState.FAIL
        why = "removed from the queue" if t.run is None else t.run.state.value
        if t.run is not None and t.run.state is RunState.SUCCESS:
            try:
                value = self._read_metric(t, loaded)
                state = TrialState.COMPLETE
            except ExqError as exc:
                why = str(exc)
        elif t.run is not None and t.run.state is RunState.PRUNED:
            state = TrialState.PRUNED
        frozen = handle.tell(t.trial, value, state=state, skip_if_finished=True)
        outcome = {
            TrialState.COMPLETE: TOLD_COMPLETE,
            TrialState.PRUNED: TOLD_PRUNED,
        }.get(frozen.state, TOLD_FAIL)
        told_value = frozen.value if frozen.state is TrialState.COMPLETE else None
        store.told(study.id, t.trial, outcome, told_value)
        fields = {"study": study.name, "trial": t.trial, "run_id": t.run_id}
        if outcome == TOLD_COMPLETE:
            self._log.info("study.trial_told", value=told_value, **fields)
        else:
            self._log.info("study.trial_told", outcome=outcome, reason=why, **fields)

    def _read_metric(self, t: TrialRecord, loaded: _Loaded) -> float:
        from exq.engine.git import Git

        assert t.run is not None
        sha = t.run.experiment_sha
        if sha is None:
            raise MetricMissing(f"{loaded.spec.objective}: the run recorded no experiment")
        git = Git.open(t.run.repo)
        prefix = git.prefix_of(t.run.repo)
        path = f"{prefix}/{loaded.spec.objective.file}".lstrip("/")
        return metric_value(git.read_blob(sha, path), loaded.spec.objective)

    # -- Optuna's side -----------------------------------------------------------

    def _load(self, study: StudyRecord) -> _Loaded:
        loaded = self._loaded.get(study.id)
        if loaded is None:
            spec = StudySpec.from_json(study.spec)
            # A pruned grid or random sweep's study draws nothing: its points are queued.
            space = (
                []
                if spec.sampler == FIXED
                else space_of(study.space, spec.sampler, _groups(study.repo))
            )
            loaded = _Loaded(spec, space)
            self._loaded[study.id] = loaded
        return loaded

    def _optuna_study(self, study: StudyRecord, loaded: _Loaded, *, seed_offset: int | None) -> Any:
        """The Optuna study (created at its first use). Its sampler is made anew
        for each ask, seeded by the study's seed and the number of trials so far:
        the draws are the same whenever the daemon restarts."""
        optuna = import_optuna()
        storage = self._rdb(optuna)
        name = optuna_name(study.id)
        handle = optuna.create_study(
            storage=storage,
            study_name=name,
            direction=loaded.spec.objective.direction,
            load_if_exists=True,
        )
        if seed_offset is None:
            seed_offset = len(handle.get_trials(deepcopy=False))
        handle.sampler = _sampler(optuna, loaded, loaded.spec.seed + seed_offset)
        return handle

    def _rdb(self, optuna: Any) -> Any:
        with self._storage_lock:
            if self._storage is None:
                self._storage = optuna.storages.RDBStorage(storage_url(self._config))
            return self._storage

    def optuna_trial(self, trial: TrialRecord, pruner: Any = None) -> optuna.trial.Trial:
        """The live Optuna trial of a queued trial, to report intermediate values
        to and ask ``pruner`` whether to prune (call from a worker thread)."""
        optuna = import_optuna()
        handle = optuna.load_study(
            study_name=optuna_name(trial.study_id), storage=self._rdb(optuna), pruner=pruner
        )
        return optuna.trial.Trial(handle, trial.optuna_id)


def _sampler(optuna: Any, loaded: _Loaded, seed: int) -> Any:
    samplers = optuna.samplers
    seed %= 2**32  # numpy's range: any --seed, and the trials added to the top one, fit
    name = loaded.spec.sampler
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "grid":
        grid = {p.head: p.choices() for p in loaded.space if not p.fixed}
        return samplers.GridSampler(grid, seed=seed)
    if name == "cmaes":
        return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return samplers.TPESampler(seed=seed)


def _groups(repo: str) -> Any:
    from exq.engine.params.hydra_sweeps import conf_groups

    return conf_groups(repo)
