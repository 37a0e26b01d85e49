"""The queue's use cases: queue, read, remove, retry and kill runs.

The CLI calls these whether or not a daemon runs: rows are written and read
through the store's sync facade (plain ``sqlite3``), and the daemon is only
rung afterwards, if it answers. Killing a running run is the one use case
that needs the daemon, since only it holds the runs' processes.

Each use case reads as its steps, for example :func:`enqueue`: snapshot the
workspace with the ``-S`` edits applied (the engine's queue snapshot), write
the rows and point ``refs/exq/queue/<id>`` at each snapshot in the same
transaction, ring the daemon.

Kept light at import time: ``exp run --queue`` answers in about 0.1 s, and
``queue status`` and ``exp show`` read the queued runs; so this module imports
the store at load, the project and the git seam (pygit2), the client and the
params editors only in the use cases that need them, and never the pipeline
or the runner.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from exq.daemon.config import DaemonConfig, check_executor, job_offsets
from exq.daemon.states import ENDED, AttemptRecord, RunState
from exq.daemon.store import NewRun, RunRecord, SyncStore, queue_ref
from exq.engine.errors import ConfigError, ExperimentError, ExqError, ParamsError, did_you_mean

if TYPE_CHECKING:
    from exq.daemon.options import RunOptions
    from exq.daemon.protocol import StatusReply
    from exq.daemon.resources import Ask
    from exq.daemon.study_store import StudyRecord
    from exq.engine.experiments.study_spec import Objective, StudySpec
    from exq.engine.git import Git

# Untracked files this big are named at enqueue (a snapshot commits them whole);
# when they make the limit together, the enqueue is refused without --force.
LARGE_UNTRACKED = 100 * 10**6
UNTRACKED_LIMIT = 1000 * 10**6
# Ring the daemon briefly: a hung daemon must not hold up an enqueue.
WAKE_TIMEOUT = 1.0
# How often the followers below read the rows again.
LOG_POLL = 0.2
RUNS_POLL = 0.1
# How often a follower of a queued run asks the daemon why it waits.
WAIT_LOOK = 1.0


@dataclass
class EnqueueRequest:
    """What ``exp run --queue`` was asked."""

    targets: list[str] = field(default_factory=list)
    set_params: list[str] = field(default_factory=list)
    name: str | None = None
    force: bool = False
    stage_jobs: int | None = None
    executor: str | None = None  # None: the daemon's
    # As typed (checked by exq.daemon.options): resources, order, time limits.
    cpus: str | float | None = None
    gpus: str | float | None = None
    mem: str | None = None
    priority: str | None = None
    after: list[str] = field(default_factory=list)  # ids or names, maybe comma-separated
    timeout: str | None = None
    retries: str | None = None
    retry_delay: str | None = None
    # Random search: this many points drawn from the -S space, seeded (as typed).
    samples: str | None = None
    seed: str | None = None
    # A study: Optuna searches the -S space for the best FILE:KEY (as typed).
    optimize: str | None = None
    maximize: bool = False
    minimize: bool = False
    trials: str | None = None
    sampler: str | None = None
    # Early stopping at checkpoints: median, asha or hyperband, judging the
    # --optimize metric (a grid or random sweep without --trials: its own points).
    prune: str | None = None
    # The environment the run's stages get (None: this process's, captured now).
    env: dict[str, str] | None = None


# -- enqueue -------------------------------------------------------------------


def enqueue(
    request: EnqueueRequest,
    config: DaemonConfig | None = None,
    *,
    root: Path | None = None,
    ring: bool = True,
    warn: Callable[[str], None] | None = None,
) -> list[tuple[int, str]]:
    """Check the options (resources, order, limits: against the ``[queue]``
    defaults and the machine), snapshot each point of the ``-S`` grid, write the
    rows with the caller's environment (each ``refs/exq/queue/<id>`` set in the
    same transaction), ring the daemon unless ``ring`` is false; (run id, name)
    of each queued run. Raises ``ExqError``; nothing is queued then.
    ``warn`` hears of large untracked files going into the snapshot
    (:func:`check_untracked`).

    ``root`` is the project (default: the one around the working directory).
    """
    from exq.engine.experiments.queue_snapshot import prepare_queue, search_of, sweep_points

    fixed = fixed_study_of_request(request)
    if fixed is None and study_of_request(request) is not None:
        raise ValueError("a study is queued with queue_study()")
    config = config or DaemonConfig.from_env()
    executor, options, after, env = _placement(request, config)
    from exq.engine.git import Git
    from exq.engine.run.project import open_project

    project = open_project(root)
    git = Git.open(project.root)
    check_untracked(git.untracked_files(), force=request.force, warn=warn)
    points = sweep_points(
        request.set_params,
        request.name,
        search=search_of(request.samples, request.seed),
        root=project.root,
    )
    snapshots = prepare_queue(project, git, points, force=request.force, targets=request.targets)
    if fixed is not None:
        check_study_pipeline(
            git,
            snapshots[0].snapshot,
            git.prefix_of(project.root),
            request.targets,
            fixed.objective,
            prune=True,
        )
    runs = [
        NewRun(
            repo=str(project.root),
            baseline=s.baseline,
            snapshot=s.snapshot,
            name=s.name,
            params=s.set_params,
            targets=list(request.targets),
            stage_jobs=request.stage_jobs,
            executor=executor,
            cpus=options.cpus,
            gpus=options.gpus,
            mem=options.mem,
            priority=options.priority,
            after=after,
            timeout=options.timeout,
            retries=options.retries,
            retry_delay=options.retry_delay,
            env=env,  # runs as this shell would, whoever started the daemon
            unique_name=request.name is not None and not request.force,
            sweep=(request.name or "") if len(snapshots) > 1 else None,
        )
        for s in snapshots
    ]
    pending = iter(snapshots)

    def point_ref(run_id: int) -> None:
        # Called in order, inside the insert transaction: no row without its ref.
        # The transaction holds the database's write lock, so a lock file of this
        # ref is a killed enqueue's, and so is the ref itself if it exists (the
        # id of a rolled-back insert comes again): both are replaced.
        git.remove_ref_lock(queue_ref(run_id))
        git.set_ref(queue_ref(run_id), next(pending).snapshot, message="exq: queued")

    if fixed is not None:
        from exq.daemon.study_service import enqueue_fixed_study

        ids = enqueue_fixed_study(config, fixed, runs, name=request.name, on_id=point_ref)
    else:
        with SyncStore(config.db_path) as store:
            ids = store.enqueue_many(runs, on_id=point_ref)
    if ring:
        wake(config)
    return [(run_id, run.name) for run_id, run in zip(ids, runs, strict=True)]


def check_study_pipeline(
    git: Git,
    snapshot: str,
    prefix: str,
    targets: Iterable[str],
    objective: Objective,
    *,
    prune: bool,
) -> None:
    """Refuse a study or pruned sweep the pipeline cannot feed: an ``--optimize``
    file no stage writes and the snapshot lacks (a typo would fail every trial
    only at its end), or ``--prune`` with no stage that takes checkpoints (a
    pruner judges runs at their checkpoints)."""
    from exq.engine.experiments.queue_snapshot import check_snapshot
    from exq.engine.spec.graph import repo_path

    stages = check_snapshot(git, snapshot, prefix, list(targets))
    file = objective.file
    written = {repo_path(stage, out.path) for stage in stages for out in stage.outs}
    written |= {
        repo_path(stage, path)
        for stage in stages
        if stage.live is not None
        for path in stage.live.paths()
    }
    if file not in written and git.read_blob(snapshot, f"{prefix}/{file}".lstrip("/")) is None:
        metrics = sorted(
            p for p in written if p.lower().endswith((".json", ".yaml", ".yml", ".toml"))
        )
        raise ConfigError(
            f"--optimize {objective}: no stage writes '{file}' and the workspace has no such file",
            hint=f"the pipeline writes {', '.join(metrics)}" if metrics else None,
        )
    if prune and not any(stage.has_checkpoints for stage in stages):
        raise ConfigError(
            "--prune: no stage of the pipeline takes checkpoints, so no run can be judged"
            " before it ends",
            hint="mark the model an out with 'checkpoint: true' and signal each step"
            " (exq.live's next_step or make_checkpoint)",
        )


def fixed_study_of_request(request: EnqueueRequest) -> StudySpec | None:
    """For ``--prune`` on a grid or random sweep (no ``--trials`` or ``--sampler``):
    the study that carries its points; else None. Raises ``ParamsError``."""
    if request.prune is None or request.trials is not None or request.sampler is not None:
        return None
    from exq.engine.experiments.study_spec import fixed_study_of

    return fixed_study_of(
        request.optimize, request.prune, maximize=request.maximize, minimize=request.minimize
    )


def queue_study(
    request: EnqueueRequest,
    config: DaemonConfig | None = None,
    *,
    root: Path | None = None,
    ring: bool = True,
    warn: Callable[[str], None] | None = None,
) -> StudyRecord:
    """Queue the study ``--optimize`` asks for: check it, snapshot the workspace,
    write the study's row; the daemon then queues its trials one by one
    (:mod:`exq.daemon.study`). Raises ``ExqError``; nothing is queued then.
    ``warn`` hears of large untracked files going into the snapshot."""
    from exq.daemon.study_service import enqueue_study

    spec = study_of_request(request)
    if spec is None:
        raise ValueError("queue_study() needs --optimize")
    config = config or DaemonConfig.from_env()
    executor, options, after, env = _placement(request, config)
    record = enqueue_study(
        request,
        spec,
        config,
        options=options,
        executor=executor,
        after=after,
        env=env,
        root=root,
        warn=warn,
    )
    if ring:
        wake(config)
    return record


def _placement(
    request: EnqueueRequest, config: DaemonConfig
) -> tuple[str | None, RunOptions, list[int], dict[str, str]]:
    """The checked executor, options, ``--after`` ids and environment of the runs
    to queue."""
    from exq.daemon.options import RawOptions, resolve

    executor = check_executor(request.executor) if request.executor is not None else None
    options = resolve(
        RawOptions(
            gpus=request.gpus,
            cpus=request.cpus,
            mem=request.mem,
            priority=request.priority,
            timeout=request.timeout,
            retries=request.retries,
            retry_delay=request.retry_delay,
        ),
        config.queue_defaults,
    )
    if (executor or config.executor) == "local":
        check_fits(options.ask, config)
    after = resolve_after(config, request.after)
    env = dict(os.environ) if request.env is None else dict(request.env)
    return executor, options, after, env


def study_of_request(request: EnqueueRequest) -> StudySpec | None:
    """The study ``--optimize`` asks for, checked (None without it); raises
    ``ParamsError`` for study options without ``--optimize`` and the like."""
    if request.optimize is None and request.prune is None and not _study_flags(request):
        return None  # no study asked for: a plain enqueue imports no study module
    from exq.engine.experiments.study_spec import check_pruner, study_of

    spec = study_of(
        request.optimize,
        maximize=request.maximize,
        minimize=request.minimize,
        trials=request.trials,
        sampler=request.sampler,
        seed=request.seed,
        samples=request.samples,
        draw_seed=int.from_bytes(os.urandom(4), "big") >> 1,
    )
    if spec is not None and request.prune is not None:
        return replace(spec, pruner=check_pruner(request.prune))
    if spec is None and request.prune is not None:
        raise ParamsError(
            "--prune needs the metric it judges: add --optimize FILE:KEY and"
            " --minimize or --maximize"
        )
    return spec


def _study_flags(request: EnqueueRequest) -> bool:
    """Whether ``request`` gives an option that only a study takes."""
    return request.maximize or request.minimize or (request.trials, request.sampler) != (None, None)


def check_untracked(
    files: list[tuple[str, int]],
    *,
    force: bool,
    warn: Callable[[str], None] | None,
    large: int = LARGE_UNTRACKED,
    limit: int = UNTRACKED_LIMIT,
) -> None:
    """A snapshot commits untracked files whole, as git objects (and a cluster
    run carries them): name each of ``large`` bytes or more through ``warn``,
    and refuse when those make ``limit`` bytes or more, unless ``force``."""
    big = sorted((item for item in files if item[1] >= large), key=lambda item: -item[1])
    if not big:
        return
    named = ", ".join(f"{path} ({size / 1e6:.1f} MB)" for path, size in big[:3])
    more = f" and {len(big) - 3} more" if len(big) > 3 else ""
    total = sum(size for _, size in big)
    if total >= limit and not force:
        raise ExperimentError(
            f"untracked files of {total / 1e6:.1f} MB would go into the run's snapshot"
            f" as git objects: {named}{more}",
            hint="track them with 'exq add', ignore them in .gitignore,"
            " or pass --force to queue them anyway",
        )
    if warn is not None:
        warn(f"untracked files go into the run's snapshot as git objects: {named}{more}")


def resolve_after(config: DaemonConfig, keys: Iterable[str]) -> list[int]:
    """The run ids of ``--after`` (ids or names, comma-separated or repeated);
    raises ``ResourceError`` for a run the queue does not have."""
    from exq.daemon.resources import ResourceError

    words = [k.strip() for word in keys for k in word.split(",") if k.strip()]
    if not words:
        return []
    ids: list[int] = []
    with SyncStore(config.db_path) as store:
        for key in words:
            record = store.get_run(key)
            if record is None:
                raise ResourceError(f"--after '{key}': no such run in the queue")
            if record.id not in ids:
                ids.append(record.id)
    return ids


def check_fits(ask: Ask, config: DaemonConfig) -> None:
    """Refuse a run that asks more than the machine has: the daemon's machine if
    it answers, else this one as a daemon started now would find it."""
    from exq.daemon.machine import detect
    from exq.daemon.resources import Machine, ResourceError, too_big

    if not (ask.gpus or ask.cpus or ask.mem):
        return
    status = _daemon_status(config)
    if status is not None and status.cpus_total:
        machine = Machine(
            gpus=tuple(str(i) for i in range(status.gpus_total)),
            cpus=status.cpus_total,
            mem=status.mem_total,
        )
    else:
        machine = detect(config.resources)
    why = too_big(ask, machine)
    if why is not None:
        raise ResourceError(f"the run {why}", hint="ask for less, or see [resources] in the README")


def _daemon_status(config: DaemonConfig) -> StatusReply | None:
    if not config.socket_path.exists():
        return None
    from exq.daemon.client import Client, DaemonError

    try:
        return Client(config.socket_path, timeout=WAKE_TIMEOUT).status()
    except DaemonError:
        return None


def set_priority(config: DaemonConfig, key: str, priority: str) -> RunRecord:
    """Give a queued run a new priority; raises ``ExqError`` for a bad value or a
    run that is not queued."""
    from exq.daemon.options import parse_int

    value = parse_int(priority, "priority")
    with SyncStore(config.db_path) as store:
        record = _find(store, key)
        if not store.set_priority(record.id, value):
            raise ExperimentError(
                f"run {record.id} is {record.state.value}: only a queued run has a priority"
            )
    wake(config)
    return record


def run_next(config: DaemonConfig, key: str) -> RunRecord:
    """Put a queued run first (and end a retry's wait); raises ``ExqError`` if it
    is not queued."""
    with SyncStore(config.db_path) as store:
        record = _find(store, key)
        if not store.run_next(record.id):
            raise ExperimentError(f"run {record.id} is {record.state.value}, not queued")
    wake(config)
    return record


def wake(config: DaemonConfig) -> None:
    """Wake the daemon if it runs; no socket file, no daemon (and no client import)."""
    if config.socket_path.exists():
        from exq.daemon.client import Client

        Client(config.socket_path, timeout=WAKE_TIMEOUT).wake_if_running()


# -- reading -------------------------------------------------------------------


def list_runs(
    config: DaemonConfig, states: Iterable[RunState] | None = None, *, repo: str | None = None
) -> list[RunRecord]:
    """The runs of the queue (or those in ``states`` / of ``repo``), oldest first;
    none when there is no queue yet (the database is not created for a read)."""
    if not config.db_path.exists():
        return []
    with SyncStore(config.db_path) as store:
        return store.list_runs(states, repo=repo)


def find_run(config: DaemonConfig, key: str) -> RunRecord:
    """The run with id or name ``key``; raises ``ExperimentError`` if there is none."""
    with SyncStore(config.db_path) as store:
        return _find(store, key)


def attempts_of(config: DaemonConfig, run_id: int) -> list[AttemptRecord]:
    """How each ended attempt of the run ended, first first."""
    if not config.db_path.exists():
        return []
    with SyncStore(config.db_path) as store:
        return store.attempts(run_id)


def _find(store: SyncStore, key: str) -> RunRecord:
    record = store.get_run(key)
    if record is None:
        names = (run.name for run in store.list_runs())
        hint = did_you_mean(key, names) or "see 'exq queue status'"
        raise ExperimentError(f"no run '{key}' in the queue", hint=hint)
    return record


def follow_log(
    config: DaemonConfig,
    run_id: int,
    out: BinaryIO,
    on_wait: Callable[[RunRecord, str], None] | None = None,
    lines: int | None = None,
) -> RunRecord | None:
    """Copy a run's log to ``out`` as it grows, until the run has ended; its last
    record (None if it was removed meanwhile). While the run waits in the queue,
    ``on_wait(record, reason)`` hears why, each time the reason changes. With
    ``lines``, what is there already is shown from its last ``lines`` lines."""
    offset: int | None = None if lines is not None else 0
    default = config.log_path(run_id)
    reason: str | None = None
    next_look = 0.0
    with SyncStore(config.db_path) as store:
        while True:
            record = store.get_run(run_id)
            path = Path(record.log_path) if record is not None and record.log_path else default
            if offset is None:
                offset = tail_offset(path, lines or 0)
            offset = copy_log(path, offset, out)
            if record is None or record.state in ENDED:
                copy_log(path, offset, out)  # what was written before the state changed
                return record
            if on_wait and record.state is RunState.QUEUED and time.monotonic() >= next_look:
                next_look = time.monotonic() + WAIT_LOOK
                now = why_waiting(config)
                if now is not None and now != reason:
                    on_wait(record, now)
                reason = now
            time.sleep(LOG_POLL)


def why_waiting(config: DaemonConfig) -> str | None:
    """Why queued runs do not start, when the daemon says so (or cannot): none
    runs, it does not answer, the queue is paused, the daemon is stopping."""
    from exq.daemon.client import Client, DaemonError, DaemonNotRunning, lock_holder

    try:
        reply = Client(config.socket_path, timeout=1).status()
    except DaemonNotRunning:
        if lock_holder(config.lock_path) is None:
            return "no exq daemon is running (start it with 'exq queue start')"
        return None  # one starting: its socket comes
    except DaemonError:
        return "the exq daemon does not answer (stopped or busy)"
    if reply.paused:
        return "the queue is paused (start it again with 'exq queue resume')"
    if reply.stopping:
        return "the exq daemon is stopping"
    return None


# Logs are copied and searched in blocks of this size: a log of any size costs
# the reader this much memory.
LOG_BLOCK = 1 << 16


def copy_log(path: Path, offset: int, out: BinaryIO) -> int:
    """Write ``path`` from ``offset`` to ``out``, a block at a time; the new offset."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return offset
    with handle:
        handle.seek(offset)
        while block := handle.read(LOG_BLOCK):
            out.write(block)
            offset += len(block)
    out.flush()
    return offset


def tail_offset(path: Path, lines: int) -> int:
    """Where the last ``lines`` lines of ``path`` start, read backwards from its end
    a block at a time (a missing file: 0)."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return 0
    with handle:
        end = handle.seek(0, os.SEEK_END)
        if lines <= 0:
            return end
        found, pos = 0, end
        while pos > 0:
            size = min(LOG_BLOCK, pos)
            pos -= size
            handle.seek(pos)
            block = handle.read(size)
            # The newline that ends the file ends the last line; it starts none.
            stop = size - 1 if pos + size == end else size
            while (newline := block.rfind(b"\n", 0, stop)) >= 0:
                found += 1
                if found == lines:
                    return pos + newline + 1
                stop = newline
    return 0


def follow_runs(
    config: DaemonConfig,
    ids: Iterable[int],
    on_change: Callable[[RunRecord], None],
    studies: Iterable[int] = (),
) -> list[RunRecord]:
    """Call ``on_change`` each time one of ``ids`` changes state, until all have ended;
    and so for the trials the ``studies`` queue, one by one, until they end too.

    Returns their last records. Raises ``DaemonNotRunning`` if the daemon goes
    away while some have not ended.
    """
    from exq.daemon.client import Client, DaemonNotRunning
    from exq.daemon.study_store import StudyStore

    pending = set(ids)
    watched = set(studies)
    seen: dict[int, tuple[RunState, int]] = {}
    last: dict[int, RunRecord] = {}
    client = Client(config.socket_path, timeout=3)
    next_check = time.monotonic() + 1.0
    with SyncStore(config.db_path) as store, StudyStore(config.db_path) as study_store:
        while pending or watched:
            for study_id in sorted(watched):
                # its trials first: a study ends only after its last trial did
                found = study_store.study(study_id)
                pending |= {t.run_id for t in study_store.trials(study_id)} - set(last)
                if found is None or found.state != "active":
                    watched.discard(study_id)
            for run_id in sorted(pending):
                record = store.get_run(run_id)
                if record is None:  # removed meanwhile
                    pending.discard(run_id)
                    continue
                last[run_id] = record
                if seen.get(run_id) != (record.state, record.attempts):
                    seen[run_id] = (record.state, record.attempts)
                    on_change(record)
                if record.state in ENDED:
                    pending.discard(run_id)
            if (pending or watched) and time.monotonic() > next_check:
                next_check = time.monotonic() + 1.0
                if client.running() is None:
                    raise DaemonNotRunning(config.socket_path)
            if pending or watched:
                time.sleep(RUNS_POLL)
    return [last[i] for i in sorted(last)]


# -- remove, retry, kill ---------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    """What a remove did: the rows removed, and the ids asked for that were running."""

    removed: list[RunRecord]
    running: list[int]


def remove(config: DaemonConfig, keys: Iterable[str], states: Iterable[RunState]) -> Removal:
    """Remove the runs ``keys`` and every run in ``states`` (never a running one),
    with their queue refs and logs."""
    with SyncStore(config.db_path) as store:
        ids = [_find(store, key).id for key in keys]
        removed = store.remove(ids, states=states)
    for record in removed:
        forget(record)
    running = sorted(set(ids) - {record.id for record in removed})
    return Removal(removed, running)


def remove_queue_refs(config: DaemonConfig, git: Git, refs: list[str]) -> int:
    """Remove the queued runs behind these ``refs/exq/queue/<id>`` refs (never a
    running one) with their rows, refs and logs; a ref with no row is just deleted.
    Returns how many were removed."""
    by_id = {int(ref.rsplit("/", 1)[1]): ref for ref in refs if ref.rsplit("/", 1)[1].isdigit()}
    records: dict[int, RunRecord] = {}
    removed: list[RunRecord] = []
    if config.db_path.exists():
        with SyncStore(config.db_path) as store:
            # A row with the same id may be another repository's (ids are per
            # database, refs per repository): only this repository's rows go.
            for run_id, ref in by_id.items():
                record = store.get_run(run_id)
                if record is not None and queued_here(git, record, ref):
                    records[run_id] = record
            removed = store.remove(list(records), states=[])
    for record in removed:
        forget(record)
    orphans = [ref for run_id, ref in by_id.items() if records.get(run_id) is None]
    orphans += [ref for ref in refs if not ref.rsplit("/", 1)[1].isdigit()]
    for ref in orphans:
        git.delete_ref(ref)
    return len(removed) + len(orphans)


def queued_here(git: Git, record: RunRecord, ref: str) -> bool:
    """Whether the row ``record`` was queued in ``git``'s repository as ``ref``: its
    project is in this working tree and the ref holds its snapshot."""
    root = os.path.realpath(git.root)
    folder = os.path.realpath(record.repo)
    inside = folder == root or folder.startswith(root.rstrip(os.sep) + os.sep)
    return inside and git.get_ref(ref) == record.snapshot


def forget(record: RunRecord) -> None:
    """Drop a removed run's queue ref, log and log offsets; a vanished repo or file is fine."""
    from exq.engine.git import Git

    try:
        Git.open(record.repo).delete_ref(queue_ref(record.id))
    except ExqError:
        pass
    if record.log_path:
        log = Path(record.log_path)
        log.unlink(missing_ok=True)
        for offset in job_offsets(log):
            offset.unlink(missing_ok=True)


@dataclass(frozen=True)
class Retry:
    """What a retry did: the runs asked for, and the ids queued again."""

    records: list[RunRecord]
    requeued: set[int]


def retry(config: DaemonConfig, keys: Iterable[str], *, reset: bool = False) -> Retry:
    """Queue failed, interrupted, cancelled, timed out or pruned runs again (at the back),
    ring the daemon.
    A checkpoint run resumes from its last checkpoint, unless ``reset`` (or the
    daemon's ``resume_checkpoints`` is off): then it starts over from its snapshot."""
    resume = config.resume_checkpoints and not reset
    with SyncStore(config.db_path) as store:
        records = [_find(store, key) for key in keys]
        done = set(store.retry([record.id for record in records], resume=resume))
    wake(config)
    return Retry(records, done)


@dataclass(frozen=True)
class Killing:
    """What a kill did: the ids the daemon stopped or cancelled, the queued ids
    cancelled here (no daemon runs), and those neither running nor queued."""

    signalled: list[int]
    cancelled: list[int]
    not_running: list[int]


def kill(config: DaemonConfig, keys: Iterable[str], force: bool) -> Killing:
    """Ask the daemon to stop running runs (SIGKILL with ``force``) and cancel queued
    ones. With no daemon alive, nothing runs: queued runs are cancelled here, by
    the same compare-and-set the daemon makes. Raises ``DaemonError``."""
    from exq.daemon.client import Client, DaemonNotRunning, lock_holder

    with SyncStore(config.db_path) as store:
        ids = [_find(store, key).id for key in keys]
        try:
            reply = Client(config.socket_path).kill(ids, force)
        except DaemonNotRunning:
            if lock_holder(config.lock_path) is not None:
                raise  # one starting, its socket not there yet: its queue
            cancelled = store.cancel_queued(ids)
            return Killing([], cancelled, [i for i in ids if i not in cancelled])
    return Killing(reply.killed, [], reply.not_running)
