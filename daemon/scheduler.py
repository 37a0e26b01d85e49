"""The scheduler: the one reconciler that moves runs between states.

Requests (through :class:`~exq.daemon.handlers.Handlers`, which this class
implements) only record intent and set an ``anyio.Event``; :meth:`Scheduler.run`
wakes, applies kills, starts the oldest queued runs in free slots (a
compare-and-set claim each), and sleeps until the next wake or poll. Each run
goes in a task of its own; its end state is written under a shielded cancel
scope, so a cancelled daemon still records it.

Stopping a run (a kill, or the daemon stopping) signals its process groups
directly: SIGINT, then SIGKILL (at once with ``force``, after ``config.grace``
seconds for a stopping daemon). A stage that starts after the signal gets it
at once, so a run cannot slip into its next stage.

Runs go to an executor: the local one, or a Ray cluster for runs (or a
daemon) that ask for it. A cluster run is stopped through its job rather than
by signals, and the daemon stopping lets go of it without stopping it: the
row stays ``running`` and the next daemon follows the job again (``adopt``).
A cluster run interrupted from outside (its node died) is queued again at
once, at the front, resuming from its last checkpoint.

Resources: the daemon knows the machine's GPUs, CPUs and memory
(:class:`~exq.daemon.resources.Machine`); a local run starts only when what it
asks for is free, in queue order (priority, then age; see
:func:`~exq.daemon.resources.plan_starts`), and holds its GPUs to itself until
it ends. Slots stay a cap on top. A run whose ``--after`` runs did not all
succeed is cancelled with the reason. A run past its ``--timeout`` is stopped
as a kill is (SIGINT, then SIGKILL after the grace) and ends ``timeout``; a
failed run with ``--retries`` left is queued again at once, to start after a
delay that doubles each time, a checkpoint run to resume from its last
checkpoint.

Checkpoint runs: each checkpoint the engine commits is counted in the store at
once (with the commit as the run's experiment so far). No signal reaches a
run while one of its checkpoint snapshots is under way (the engine holds the
run's ``snapshot_lock`` then): the signal waits for the snapshot to end, so a
stopped checkpoint run always keeps a whole last checkpoint, and ends
interrupted, to resume from it at the next start.

Pruning (``--prune``, :mod:`~exq.daemon.pruning`): each checkpoint of a run
whose sweep has a pruner is judged before the script goes on; a run the
pruner stops gets SIGINT once that checkpoint's snapshot is done (SIGKILL
after the grace) and ends ``pruned``, its chain ending at that checkpoint.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import partial

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from exq.daemon.config import DaemonConfig
from exq.daemon.executors.base import (
    LOCAL,
    ExecResult,
    Executor,
    RemoteJob,
    RunHooks,
    is_pending_location,
    is_remote_location,
    location_of,
    ray_address_of,
)
from exq.daemon.executors.local import LocalExecutor, reap_leftovers, signal_group, start_ticks
from exq.daemon.handlers import StatusInfo
from exq.daemon.notify import QUEUE_DRAINED, RUN_END, Event, deliver
from exq.daemon.protocol import check_jobs
from exq.daemon.pruning import Pruning
from exq.daemon.requeue import requeue_interrupted
from exq.daemon.resources import (
    Ask,
    Candidate,
    Holding,
    Machine,
    free_gpus,
    holding_of,
    plan_starts,
    retry_delay,
    too_big,
)
from exq.daemon.states import (
    DEPS_BROKEN,
    DEPS_MET,
    Outcome,
    RunState,
    StopReason,
    deps_state,
    end_state,
    free_slots,
    resume_point,
    should_retry,
)
from exq.daemon.store import SETTING_JOBS, SETTING_PAUSED, RunProcess, RunRecord, StoreError
from exq.daemon.store_async import AsyncStore
from exq.daemon.study import Studies
from exq.engine.errors import ExqError, describe_failure, user_error_of
from exq.engine.run.callbacks import CheckpointEvent, RunCallbacks

# Seconds between looks at the queue when nobody rings: the CLI rings after an
# enqueue, so this only catches rings lost to a race.
POLL_SECONDS = 1.0
# Seconds before a cluster that did not answer is tried again: doubling up to the last.
AWAY_BACKOFF = (2.0, 60.0)


@dataclass
class Away:
    """A cluster that did not answer: its runs wait in the queue until ``until``."""

    until: float
    delay: float


# The wait before the first automatic retry when the run did not say (--retry-delay).
DEFAULT_RETRY_DELAY = 60.0


class StopMode(Enum):
    FINISH = "finish"  # let running runs end
    KILL = "kill"  # interrupt them


@dataclass
class Active:
    """A run in a slot."""

    record: RunRecord
    slot: int
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    pgids: list[int] = field(default_factory=list)
    stop: StopReason | None = None
    signum: int | None = None  # the last signal sent: new stages get it too
    # Held by the engine during a checkpoint snapshot: signals wait for it.
    snapshot_lock: anyio.Lock = field(default_factory=anyio.Lock)
    deferred: bool = False  # a task waits for the snapshot to send ``signum``
    remote: RemoteJob | None = None  # set once a cluster took the run
    adopted: bool = False  # left running by a previous daemon
    pending: bool = False  # its cluster keeps it waiting for resources
    gpus: tuple[str, ...] = ()  # the devices it holds (a local run)
    ask: Ask = field(default_factory=Ask)  # what it holds of this machine
    deadline: float | None = None  # anyio time its --timeout ends
    kill_at: float | None = None  # past its time (or pruned): SIGKILL then
    why: str | None = None  # a pruned run's reason, its error once it ended

    @property
    def token(self) -> str:
        return self.record.token or ""


def _note_end(record: RunRecord, line: str) -> None:
    """Append ``line`` to the run's log (the runner closed it); a log that cannot be
    written is no reason to lose the run's end."""
    if record.log_path is None:
        return
    try:
        with open(record.log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
    except OSError:
        pass


class Scheduler:
    """Takes queued runs up to ``jobs`` at a time and runs them to an end state."""

    def __init__(
        self,
        store: AsyncStore,
        config: DaemonConfig,
        log: structlog.typing.FilteringBoundLogger,
        *,
        poll_seconds: float = POLL_SECONDS,
        adopt: list[RunRecord] | None = None,
        executors: Mapping[str, Executor] | None = None,
        machine: Machine | None = None,
        paused: bool = False,
    ) -> None:
        self._store = store
        self._config = config
        self._log = log
        self._poll = poll_seconds
        self._jobs = check_jobs(max(1, config.jobs or 1))
        self._machine = machine or Machine(cpus=float(os.cpu_count() or 1))
        self._paused = paused
        self._stop_mode: StopMode | None = None
        self._grace_deadline: float | None = None
        self._kills: dict[int, bool] = {}
        self._active: dict[int, Active] = {}
        self._wakeup = anyio.Event()
        self._notify_lock = anyio.Lock()
        self._tg: TaskGroup | None = None
        # By where a run goes: "local", or "ray ADDRESS" (made when first asked).
        self._executors: dict[str, Executor] = dict(
            executors or {LOCAL: LocalExecutor(config, self._machine)}
        )
        self._adopt = list(adopt or [])  # cluster runs a previous daemon left running
        self._studies = Studies(store, config, log)  # they queue trials as slots free
        self._pruning = Pruning(self._studies, config, log)  # judges pruned sweeps' checkpoints
        self._away: dict[str, Away] = {}  # by location: clusters that did not answer
        self.stop_requested = anyio.Event()
        self.finished = anyio.Event()  # run() returned after a stop
        self.store_lost = False  # the database file went away: the daemon stopped

    # -- Handlers: record intent, wake the loop -----------------------------

    async def wake(self) -> None:
        self._wakeup.set()

    async def status(self) -> StatusInfo:
        return StatusInfo(
            pid=os.getpid(),
            slots_busy=sum(not active.pending for active in self._active.values()),
            slots_total=self._jobs,
            paused=self._paused,
            stopping=self._stop_mode is not None,
            running=sorted(self._active),
            gpus_total=len(self._machine.gpus),
            gpus_free=len(free_gpus(self._machine, self._holding())),
            cpus_total=self._machine.cpus,
            mem_total=self._machine.mem,
        )

    def _holding(self) -> Holding:
        return holding_of([(a.gpus, a.ask) for a in self._active.values() if not a.remote])

    async def kill(self, run_ids: list[int], force: bool) -> list[int]:
        # One read of the queue, whatever the number of ids asked for.
        queued = {item.run_id for item in await self._store.queue_items()}
        killed = []
        for run_id in dict.fromkeys(run_ids):
            if run_id in self._active or run_id in queued:
                self._kills[run_id] = self._kills.get(run_id, False) or force
                killed.append(run_id)
        self._wakeup.set()
        return killed

    async def pause(self) -> None:
        self._paused = True
        await self._store.set_setting(SETTING_PAUSED, "1")  # a restart stays paused
        self._log.info("queue.paused")
        self._wakeup.set()

    async def resume(self) -> None:
        self._paused = False
        await self._store.set_setting(SETTING_PAUSED, "0")
        self._log.info("queue.resumed")
        self._wakeup.set()

    async def set_jobs(self, jobs: int) -> None:
        self._jobs = check_jobs(jobs)
        await self._store.set_setting(SETTING_JOBS, str(jobs))  # kept for the next start
        self._log.info("queue.jobs", jobs=jobs)
        self._wakeup.set()

    @property
    def killing(self) -> bool:
        """Whether a stop that interrupts the running runs is under way."""
        return self._stop_mode is StopMode.KILL

    async def stop(self, kill: bool, *, now: bool = False) -> None:
        """See :meth:`Handlers.stop`; ``now`` (a second signal) skips the grace."""
        if kill or self._stop_mode is None:
            self._stop_mode = StopMode.KILL if kill else StopMode.FINISH
        if now:
            self._grace_deadline = anyio.current_time()
        if not self.stop_requested.is_set():
            self._log.info("daemon.stopping", kill=kill, running=sorted(self._active))
            self.stop_requested.set()
        self._wakeup.set()

    # -- the loop -------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Reconcile until a stop is requested and no run is left running."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await self.load_settings()
            self._start_adopted(tg)
            task_status.started()
            while True:
                self._wakeup = anyio.Event()
                if not self.store_lost and self._store.is_lost():
                    await self._lose_store()
                await self._reconcile(tg)
                if self._stop_mode is not None and not self._active:
                    break
                with anyio.move_on_after(self._timeout()):
                    await self._wakeup.wait()
        self.finished.set()

    async def _lose_store(self) -> None:
        """The database was moved or deleted under us: stop (the runs interrupted),
        rather than go on with a queue nobody else sees."""
        self.store_lost = True
        self._log.error(
            "store.lost",
            db=str(self._store.db_path),
            error="the queue database was moved or deleted while the daemon used it",
        )
        await self.stop(kill=True)

    def _timeout(self) -> float:
        now = anyio.current_time()
        ends = [self._grace_deadline] if self._grace_deadline is not None else []
        ends += [t for a in self._active.values() for t in (a.deadline, a.kill_at) if t]
        left = [end - now for end in ends if end > now]
        if not left or not self._active:
            return self._poll
        return min(self._poll, *left)

    async def _reconcile(self, tg: TaskGroup) -> None:
        await self._apply_kills()
        self._apply_timeouts()
        if self._stop_mode is StopMode.KILL:
            self._interrupt_all()
        if self._stop_mode is None and not self._paused:
            await self._start_runs(tg)

    async def _apply_kills(self) -> None:
        kills, self._kills = self._kills, {}
        for run_id, force in kills.items():
            active = self._active.get(run_id)
            if active is not None:
                active.stop = StopReason.KILL
                self._log.info("run.killing", run_id=run_id, force=force)
                self._signal(active, signal.SIGKILL if force else signal.SIGINT)
            elif await self._store.transition(
                run_id, RunState.QUEUED, RunState.CANCELLED, error="killed before it started"
            ):
                self._log.info("run.cancelled", run_id=run_id)

    def _apply_timeouts(self) -> None:
        """Runs past their --timeout: SIGINT, then SIGKILL after the grace (as for
        pruned runs still going by then)."""
        now = anyio.current_time()
        for active in self._active.values():
            if active.stop is None and active.deadline is not None and now >= active.deadline:
                active.stop = StopReason.TIMEOUT
                active.kill_at = now + self._config.grace
                self._log.info("run.timeout", run_id=active.record.id)
                self._signal(active, signal.SIGINT)
            elif (
                active.stop in (StopReason.TIMEOUT, StopReason.PRUNE)
                and active.kill_at is not None
                and now >= active.kill_at
                and active.signum != signal.SIGKILL
            ):
                self._signal(active, signal.SIGKILL)

    def _prune(self, active: Active, why: str) -> None:
        """Stop a run its pruner judged, at the checkpoint it just made: SIGINT, which
        waits for that checkpoint's snapshot to end (its chain ends there), then
        SIGKILL after the grace. Its slot frees as soon as it is gone."""
        if active.stop is not None:  # already stopping for another reason
            return
        active.stop = StopReason.PRUNE
        active.why = why
        active.kill_at = anyio.current_time() + self._config.grace
        self._log.info("run.pruning", run_id=active.record.id, reason=why)
        self._signal(active, signal.SIGINT)
        self._wakeup.set()  # the loop's next wait ends at kill_at

    def _interrupt_all(self) -> None:
        """Daemon stopping: SIGINT every run once, SIGKILL and cancel after the grace."""
        now = anyio.current_time()
        if self._grace_deadline is None:
            self._grace_deadline = now + self._config.grace
        for active in self._active.values():
            if self._is_remote(active):  # let go of it: the job goes on on its cluster
                active.stop = StopReason.SHUTDOWN
                active.scope.cancel()
                continue
            if active.stop is None:
                active.stop = StopReason.SHUTDOWN
                self._signal(active, signal.SIGINT)
            if now >= self._grace_deadline:
                if active.signum != signal.SIGKILL:
                    self._signal(active, signal.SIGKILL)
                active.scope.cancel()  # for a run busy outside any process

    def _signal(self, active: Active, signum: int) -> None:
        active.signum = signum
        if active.remote is not None:  # a cluster run: its job stops it
            if self._tg is not None:
                self._tg.start_soon(active.remote.stop)
            return
        if active.snapshot_lock.locked():  # a checkpoint snapshot is under way
            if not active.deferred and self._tg is not None:
                active.deferred = True
                self._log.info(
                    "run.signal_deferred",
                    run_id=active.record.id,
                    signal=signal.Signals(signum).name,
                )
                self._tg.start_soon(self._signal_after_snapshot, active)
            return
        self._send(active, signum)

    async def _signal_after_snapshot(self, active: Active) -> None:
        # Holding the lock, no new snapshot can start while the signal goes out.
        async with active.snapshot_lock:
            active.deferred = False
            if active.signum is not None:
                self._send(active, active.signum)

    def _send(self, active: Active, signum: int) -> None:
        for pgid in active.pgids:
            if signal_group(pgid, active.token, signum):
                self._log.info(
                    "run.signalled",
                    run_id=active.record.id,
                    pgid=pgid,
                    signal=signal.Signals(signum).name,
                )

    async def _start_runs(self, tg: TaskGroup) -> None:
        # A run its cluster keeps waiting for resources holds no slot meanwhile.
        busy = {active.slot for active in self._active.values() if not active.pending}
        if len(busy) >= self._jobs:
            return
        # Studies tell Optuna of ended trials and queue new ones for the free slots.
        await self._studies.step(self._jobs - len(busy))
        now = anyio.current_time()
        away = {where for where, gone in self._away.items() if gone.until > now}
        # Runs for a cluster that is away wait; the others go on past them.
        queued = [r for r in await self._store.queued() if self._location(r) not in away]
        states = await self._store.states() if any(r.after for r in queued) else {}
        candidates = []
        for record in queued:
            candidate = await self._candidate(record, states)
            if candidate is not None:
                candidates.append(candidate)
        by_id = {record.id: record for record in queued}
        starts = plan_starts(
            candidates,
            self._machine,
            self._holding(),
            free_slots(busy, self._jobs),
            datetime.now(UTC),
        )
        for start in starts:
            record = by_id[start.run_id]
            token = secrets.token_hex(8)
            log_path = self._config.log_path(record.id)
            location = self._location(record)
            if not await self._store.claim(
                record.id,
                slot=start.slot,
                log_path=str(log_path),
                token=token,
                location=location,
                gpus=start.gpus,
            ):
                self._wakeup.set()  # removed or cancelled meanwhile: look again
                continue
            claimed = await self._store.get_run(record.id)
            assert claimed is not None
            active = Active(record=claimed, slot=start.slot, gpus=start.gpus)
            if location == LOCAL:
                active.ask = ask_of(claimed)
            if claimed.timeout:
                active.deadline = anyio.current_time() + claimed.timeout
            self._active[record.id] = active
            tg.start_soon(self._run_one, active)

    async def _candidate(self, record: RunRecord, states: dict[int, RunState]) -> Candidate | None:
        """How the planner sees a queued run; None for one that can never start
        (it is cancelled here, with the reason)."""
        local = self._location(record) == LOCAL
        why = too_big(ask_of(record), self._machine) if local else None
        deps, broken = deps_state(record.after, states)
        reason = why or (f"not started: {broken}" if deps == DEPS_BROKEN else None)
        if reason is not None:
            if await self._store.transition(
                record.id, RunState.QUEUED, RunState.CANCELLED, error=reason
            ):
                self._log.info("run.cancelled", run_id=record.id, error=reason)
                self._wakeup.set()  # runs after this one are cancelled in turn
            return None
        return Candidate(
            run_id=record.id,
            priority=record.priority,
            seq=record.seq,
            ask=ask_of(record),
            not_before=record.not_before,
            deps_met=deps == DEPS_MET,
            local=local,
        )

    def _start_adopted(self, tg: TaskGroup) -> None:
        for record in self._adopt:
            slot = record.worker_slot if record.worker_slot is not None else len(self._active)
            active = Active(record=record, slot=slot, adopted=True)
            self._active[record.id] = active
            self._log.info("run.adopted", run_id=record.id, location=record.location)
            tg.start_soon(self._run_one, active)
        self._adopt = []

    def _location(self, record: RunRecord) -> str:
        """Where a queued run goes: ``local`` or ``ray ADDRESS``."""
        return location_of(record.executor or self._config.executor, self._config.ray_address)

    async def load_settings(self) -> None:
        """Slots and pause as the last daemon left them (``exq queue start -j 3``
        then a stop and a start: 3 slots), unless the command line said."""
        if self._config.jobs is None:
            kept = await self._store.setting(SETTING_JOBS)
            self._jobs = int(kept) if kept and kept.isdigit() else self._config.queue_jobs or 1
        else:
            await self._store.set_setting(SETTING_JOBS, str(self._config.jobs))
        self._paused = self._paused or await self._store.setting(SETTING_PAUSED) == "1"

    def _is_remote(self, active: Active) -> bool:
        return active.remote is not None or is_remote_location(active.record.location)

    def _executor(self, location: str) -> Executor:
        """The executor of an attempt, from where its claim sent it: an adopted
        run goes on with the cluster it started on, whatever the daemon's
        settings are now."""
        key = ray_address_of(location) if is_remote_location(location) else LOCAL
        if key not in self._executors:
            from exq.daemon.executors.ray.executor import (
                RayExecutor,
            )  # Ray only when a run wants it

            config = replace(self._config, ray_address=key)
            self._executors[key] = RayExecutor(config, self._log)
        return self._executors[key]

    # -- one run ------------------------------------------------------------

    async def _run_one(self, active: Active) -> None:
        record = active.record
        structlog.contextvars.bind_contextvars(run_id=record.id)
        self._log.info(
            "run.started",
            name=record.name,
            repo=record.repo,
            slot=active.slot,
            attempt=record.attempts,
        )
        result = ExecResult(Outcome.CANCELLED)
        try:
            with active.scope:
                callbacks = RunCallbacks(
                    on_spawn=partial(self._on_spawn, active),
                    on_checkpoint=partial(self._on_checkpoint, active),
                    snapshot_lock=active.snapshot_lock,
                    stopping=lambda: active.signum is not None,
                )
                hooks = RunHooks(
                    callbacks=callbacks,
                    on_remote=partial(self._on_remote, active),
                    adopted=active.adopted,
                )
                executor = self._executor(record.location or LOCAL)
                result = await executor.execute(record, slot=active.slot, hooks=hooks)
        except ExqError as exc:  # the executor cannot start (Ray missing, say)
            self._log.warning("run.executor_failed", error=str(exc))
            result = ExecResult(Outcome.FAILED, error=str(exc))
        except Exception as exc:  # grouped errors, a full disk, a bug: the daemon goes on
            if user_error_of(exc) is None:
                self._log.exception("run.crashed")
            else:
                self._log.warning("run.failed_on_error", error=describe_failure(exc))
            result = ExecResult(Outcome.FAILED, error=describe_failure(exc))
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish(active, result)

    async def _finish(self, active: Active, result: ExecResult) -> None:
        record = active.record
        where = record.location or LOCAL
        if result.outcome is Outcome.UNSENT and active.stop is None:
            await self._put_back(record, result.error or "")
            self._mark_away(where, result.error or "")
            del self._active[record.id]
            self._wakeup.set()
            return
        if self._away.pop(where, None) is not None:
            self._log.info("ray.reachable", location=where)
        if result.outcome is Outcome.CANCELLED and self._is_remote(active):
            # The daemon is going away: the job goes on, the next daemon adopts it.
            self._log.info("run.detached", location=record.location)
            del self._active[record.id]
            self._wakeup.set()
            return
        if not self._is_remote(active):
            await self._reap(active)
        state, error = end_state(result.outcome, active.stop, active.why or result.error)
        if active.stop is not None and not self._is_remote(active):
            # The runner's last line says the command failed; say why it was stopped.
            _note_end(record, f"exq: ended {state.value}: {error}")
        # A run that did not succeed keeps the experiment its checkpoints recorded.
        outcome = (
            {"experiment_ref": result.experiment_ref, "experiment_sha": result.experiment_sha}
            if state is RunState.SUCCESS
            else {}
        )
        if should_retry(state, error, record.retries_left):  # not the run's end yet
            await self._retry(record, result.exit_code, error or "")
        else:
            await self._store.transition(
                record.id,
                RunState.RUNNING,
                state,
                exit_code=result.exit_code,
                error=error,
                **outcome,
            )
        self._log.info(
            "run.finished",
            state=state.value,
            exit_code=result.exit_code,
            error=error,
            experiment_ref=result.experiment_ref,
        )
        retried = should_retry(state, error, record.retries_left)
        if (
            state is RunState.INTERRUPTED
            and result.outcome is Outcome.INTERRUPTED
            and self._stop_mode is None
        ):
            fresh = await self._store.get_run(record.id)
            if fresh is not None:
                await requeue_interrupted(self._store, [fresh], self._config, self._log)
        del self._active[record.id]
        self._pruning.forget(record)
        if not retried:
            self._notify(
                Event(
                    RUN_END,
                    run_id=record.id,
                    name=record.name,
                    state=state.value,
                    exit_code=result.exit_code,
                    experiment_ref=result.experiment_ref if state is RunState.SUCCESS else None,
                    repo=record.repo,
                )
            )
        if (
            not self._active
            and self._stop_mode is None
            and not await self._store.queued(1)
            and not await self._store.has_study_to_ask()  # its next trial comes at once
        ):
            self._notify(Event(QUEUE_DRAINED))
        self._wakeup.set()

    def _notify(self, event: Event) -> None:
        """Tell the user, in a task of its own: the scheduler never waits on it."""
        if self._config.notify.active and self._tg is not None:
            self._tg.start_soon(self._deliver, event)

    async def _deliver(self, event: Event) -> None:
        # One at a time, in order: a run's end is told before the drain it caused.
        async with self._notify_lock:
            try:
                done = await anyio.to_thread.run_sync(
                    deliver, self._config.notify, event, os.environ
                )
            except Exception:  # a notification never takes the daemon (and its runs) down
                self._log.exception("notify.failed", kind=event.kind)
                return
        for item in done:
            fields = {"kind": event.kind, "command": " ".join(item.argv), "output": item.output}
            if item.error is None and item.exit_code == 0:
                self._log.info("notify.ran", exit_code=item.exit_code, **fields)
            else:
                self._log.warning(
                    "notify.failed", exit_code=item.exit_code, error=item.error, **fields
                )

    async def _reap(self, active: Active) -> None:
        """SIGKILL what the run left running: a process that left its stage's
        group (a double fork, ``setsid``) still carries the attempt's token."""
        found = await anyio.to_thread.run_sync(reap_leftovers, [], [active.token])
        if found:
            self._log.info("run.reaped", pids=found)

    async def _put_back(self, record: RunRecord, error: str) -> None:
        """A run that never left goes back to its place in the queue, its attempt
        not counted."""
        await self._store.transition(record.id, RunState.RUNNING, RunState.INTERRUPTED, error=error)
        await self._store.transition(
            record.id,
            RunState.INTERRUPTED,
            RunState.QUEUED,
            attempts=max(0, record.attempts - 1),
            error=error,
            exit_code=None,
            finished=None,
            worker_slot=None,
        )
        self._log.info("run.requeued", run_id=record.id, error=error)

    def _mark_away(self, where: str, error: str) -> None:
        """Hold the runs of a cluster that did not answer, trying again with a backoff;
        say so once."""
        gone = self._away.get(where)
        if gone is None:
            self._log.warning("ray.unreachable", location=where, error=error)
            gone = self._away[where] = Away(until=0.0, delay=AWAY_BACKOFF[0])
        elif gone.until <= anyio.current_time():  # tried again: wait longer
            gone.delay = min(gone.delay * 2, AWAY_BACKOFF[1])
        gone.until = anyio.current_time() + gone.delay

    async def _retry(self, record: RunRecord, exit_code: int | None, error: str) -> None:
        """Queue a failed run again by itself, after a delay that doubles with each
        retry; a checkpoint run resumes from its last checkpoint."""
        fresh = await self._store.get_run(record.id) or record  # its checkpoints so far
        delay = retry_delay(
            record.retry_delay if record.retry_delay is not None else DEFAULT_RETRY_DELAY,
            record.retries - record.retries_left,
        )
        not_before = datetime.now(UTC) + timedelta(seconds=delay)
        resume = resume_point(
            fresh.experiment_sha, fresh.checkpoints, self._config.resume_checkpoints
        )
        await self._store.fail_and_requeue(
            record.id,
            {"exit_code": exit_code, "error": error},
            {
                "retries_left": record.retries_left - 1,
                "not_before": not_before,
                "resume_sha": resume,
                "worker_slot": None,
                "gpus_assigned": [],
            },
        )
        self._log.info(
            "run.retry", not_before=not_before.isoformat(), retries_left=record.retries_left - 1
        )

    async def _on_checkpoint(self, active: Active, event: CheckpointEvent) -> None:
        # Runs inside the engine's shielded snapshot: one quick write. The commit
        # is made already: a database error must not refuse the checkpoint.
        try:
            await self._store.record_checkpoint(
                active.record.id, active.token, ref=event.ref, sha=event.sha
            )
        except StoreError as exc:
            self._log.warning("checkpoint.unrecorded", sha=event.sha, error=str(exc))
            return
        self._log.info(
            "checkpoint.saved", sha=event.sha, ref=event.ref, step=event.step, count=event.count
        )
        # A pruned sweep's run: its pruner judges the checkpoint before the script
        # goes on (the script waits for this snapshot), so a stop lands right here.
        if active.stop is None and not self._is_remote(active):
            verdict = await self._pruning.judge(active.record, event)
            if verdict is not None:
                self._prune(active, verdict.reason())

    async def _on_remote(self, active: Active, job: RemoteJob, location: str | None) -> None:
        active.remote = job
        if active.signum is not None:  # killed while it was being sent
            await job.stop()
        if location is not None:
            await self._store.set_location(active.record.id, location)
            active.pending = is_pending_location(location)
            if active.pending:
                self._wakeup.set()  # its slot is free for another run

    async def _on_spawn(self, active: Active, pid: int) -> None:
        active.pgids.append(pid)
        if active.signum is not None:  # stopping: this stage must not run on
            signal_group(pid, active.token, active.signum)
        await self._store.add_proc(
            RunProcess(
                run_id=active.record.id, pid=pid, start_ticks=start_ticks(pid), token=active.token
            )
        )


def ask_of(record: RunRecord) -> Ask:
    """What a run asks of this machine."""
    return Ask(gpus=int(record.gpus or 0), cpus=record.cpus or 0.0, mem=record.mem or 0)
