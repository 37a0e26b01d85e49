"""Run states and the decisions about them, as pure functions over plain data.

A run's life::

    queued ──> running ──> success
      │           ├──────> failed        (a stage failed, or the user killed it)
      │           ├──────> timeout       (it ran longer than its --timeout)
      │           ├──────> pruned        (its sweep's pruner stopped it at a checkpoint)
      │           └──────> interrupted   (the daemon stopped or died under it)
      └──> cancelled                     (killed while still queued, or a run
                                          it was --after did not succeed)

    interrupted ──> queued   (at the next start, at the front of the queue;
                              a checkpoint run resumes from its last checkpoint)
    failed, cancelled, interrupted, timeout, pruned ──> queued   (``exq queue retry``;
                              a checkpoint run resumes from its last checkpoint)
    failed ──> queued   (at once, by the scheduler, while ``--retries`` are left)

Only the daemon's scheduler moves a run to ``running`` or to an end state; the
CLI only inserts queued rows, requeues ended ones (retry) and deletes rows
that are not running. Every move is a compare-and-set in SQL on the old state.

Killed runs end ``failed`` with the error ``killed``, as DVC marks killed
experiments failed: ``interrupted`` would requeue them at the next start.

:class:`RunRecord` is one run as the queue holds it (one row of the store),
the type the CLI reads runs as.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

# A run interrupted this many times (the daemon died or stopped under it each
# time) is failed rather than requeued again: it may be what kills the daemon.
MAX_ATTEMPTS = 5


class RunState(enum.StrEnum):
    """The states of a queued run, as stored in the database."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    PRUNED = "pruned"


@dataclass(frozen=True)
class RunRecord:
    """One row of the queue."""

    id: int
    seq: int  # queue order: lowest first
    name: str
    repo: str
    baseline: str
    snapshot: str
    snapshot_ref: str  # refs/exq/queue/<id>, keeps the snapshot alive
    params: list[str]
    targets: list[str]
    stage_jobs: int | None
    state: RunState
    attempts: int
    created: datetime
    started: datetime | None
    finished: datetime | None
    exit_code: int | None
    error: str | None
    log_path: str | None
    experiment_ref: str | None
    experiment_sha: str | None
    checkpoints: int
    worker_slot: int | None
    token: str | None  # EXQ_RUN_TOKEN of the current attempt: marks its processes
    # The checkpoint commit the next attempt resumes from (set at start-up
    # recovery for an interrupted checkpoint run); None: run from the snapshot.
    resume_sha: str | None = None
    executor: str | None = None  # None: the daemon's default executor
    cpus: float | None = None
    gpus: float | None = None
    location: str | None = None  # where the current attempt runs ("local", "ray ADDRESS ...")
    mem: int | None = None
    priority: int = 0
    after: list[int] = field(default_factory=list)
    timeout: float | None = None
    retries: int = 0  # automatic retries asked for
    retries_left: int = 0
    retry_delay: float | None = None
    not_before: datetime | None = None  # a retried run waits until then
    gpus_assigned: list[str] = field(default_factory=list)  # devices the attempt holds
    env: dict[str, str] | None = field(default=None, repr=False)  # never printed


@dataclass(frozen=True)
class AttemptRecord:
    """How one attempt of a run ended (a row of ``attempts``)."""

    attempt: int
    state: RunState  # the state the run left ``running`` for
    started: datetime | None
    finished: datetime | None
    exit_code: int | None
    error: str | None
    checkpoints: int
    location: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "attempt": self.attempt,
            "state": self.state.value,
            "started": None if self.started is None else self.started.isoformat(),
            "finished": None if self.finished is None else self.finished.isoformat(),
            "exit_code": self.exit_code,
            "error": self.error,
            "checkpoints": self.checkpoints,
            "location": self.location,
        }


ENDED = frozenset(
    {
        RunState.SUCCESS,
        RunState.FAILED,
        RunState.INTERRUPTED,
        RunState.CANCELLED,
        RunState.TIMEOUT,
        RunState.PRUNED,
    }
)
RETRYABLE = frozenset(
    {
        RunState.FAILED,
        RunState.INTERRUPTED,
        RunState.CANCELLED,
        RunState.TIMEOUT,
        RunState.PRUNED,
    }
)

TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.CANCELLED}),
    RunState.RUNNING: frozenset(
        {
            RunState.SUCCESS,
            RunState.FAILED,
            RunState.INTERRUPTED,
            RunState.TIMEOUT,
            RunState.PRUNED,
        }
    ),
    RunState.SUCCESS: frozenset(),
    RunState.FAILED: frozenset({RunState.QUEUED}),
    RunState.INTERRUPTED: frozenset({RunState.QUEUED, RunState.FAILED}),
    RunState.CANCELLED: frozenset({RunState.QUEUED}),
    RunState.TIMEOUT: frozenset({RunState.QUEUED}),
    RunState.PRUNED: frozenset({RunState.QUEUED}),
}


def can_transition(old: RunState, new: RunState) -> bool:
    """Whether a run may move from ``old`` to ``new``."""
    return new in TRANSITIONS[old]


# -- start-up recovery ------------------------------------------------------


DIED = "the daemon died while the run was running"


def seen_state(run: RunRecord, daemon_alive: bool) -> RunState:
    """The state to show: a local run left ``running`` by a dead daemon is interrupted
    (the next start runs it again). A cluster run goes on without the daemon: the
    next one follows it again."""
    local = run.location in (None, "local")
    if run.state is RunState.RUNNING and local and not daemon_alive:
        return RunState.INTERRUPTED
    return run.state


@dataclass(frozen=True)
class Recovery:
    """What to do at start-up with a run a previous daemon left behind."""

    steps: tuple[RunState, ...]  # states to move through, in order
    error: str | None = None  # error text of a final ``failed`` step
    kill_leftovers: bool = False  # its processes may still run: reap them


def recovery_decision(state: RunState, attempts: int, max_attempts: int = MAX_ATTEMPTS) -> Recovery:
    """The moves for one run found in ``state`` when the daemon starts.

    ``running`` means the previous daemon died under it: it becomes
    ``interrupted`` (error :data:`DIED`) and, like runs interrupted by a
    graceful stop, is queued again at the front, unless it has used up its
    attempts: then it is failed.
    """
    if state is RunState.RUNNING:
        rest = recovery_decision(RunState.INTERRUPTED, attempts, max_attempts)
        return Recovery(
            steps=(RunState.INTERRUPTED, *rest.steps), error=rest.error, kill_leftovers=True
        )
    if state is RunState.INTERRUPTED:
        if attempts >= max_attempts:
            return Recovery(
                steps=(RunState.FAILED,), error=f"interrupted {attempts} times, not retried again"
            )
        return Recovery(steps=(RunState.QUEUED,))
    return Recovery(steps=())


def resume_point(experiment_sha: str | None, checkpoints: int, enabled: bool) -> str | None:
    """The commit an interrupted run requeued at start-up resumes from: its last
    checkpoint, when it made one and resuming is on; else None (from the snapshot)."""
    if not enabled or checkpoints <= 0 or not experiment_sha:
        return None
    return experiment_sha


# -- queue order ------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    """A queued run's place: ordered by ``seq``, then by id."""

    run_id: int
    seq: int


def front_seqs(requeued: Sequence[QueueItem], queued: Sequence[QueueItem]) -> dict[int, int]:
    """New ``seq`` values putting ``requeued`` before every run in ``queued``,
    keeping their own relative order."""
    ordered = sorted(requeued, key=lambda item: (item.seq, item.run_id))
    front = min((item.seq for item in queued), default=1)
    start = front - len(ordered)
    return {item.run_id: start + index for index, item in enumerate(ordered)}


def free_slots(busy_slots: set[int], jobs: int) -> Iterator[int]:
    """The slots among ``0..jobs-1`` no run holds, lowest first.

    Found lazily, so the work is the runs started, never ``jobs``.
    """
    return (slot for slot in range(jobs) if slot not in busy_slots)


# -- end of a run -----------------------------------------------------------


class Outcome(enum.StrEnum):
    """How the executor came back."""

    SUCCESS = "success"
    FAILED = "failed"  # a stage failed or the run could not be set up
    CANCELLED = "cancelled"  # the run's task was cancelled before it ended
    INTERRUPTED = "interrupted"  # stopped from outside: its cluster node died, say
    UNSENT = "unsent"  # it never left: its cluster did not answer (it waits in the queue)


class StopReason(enum.StrEnum):
    """Why the scheduler stopped a running run, if it did."""

    KILL = "kill"  # the user: exq queue kill
    SHUTDOWN = "shutdown"  # the daemon is stopping
    TIMEOUT = "timeout"  # it ran past its --timeout
    PRUNE = "prune"  # its sweep's pruner judged it, at the checkpoint it just made


def end_state(
    outcome: Outcome, stop: StopReason | None, error: str | None
) -> tuple[RunState, str | None]:
    """The end state and error text of a run that came back with ``outcome``.

    A run that succeeds despite a stop request (it ignored SIGINT and finished)
    is a success. Otherwise a killed run is failed with ``killed``, a run
    stopped by a shutdown or cancelled is interrupted, so that it runs again.
    A pruned run keeps the reason the scheduler gave (``error``): the step
    and the value the pruner judged.
    """
    if outcome is Outcome.SUCCESS:
        return RunState.SUCCESS, None
    if stop is StopReason.PRUNE:
        return RunState.PRUNED, error
    if stop is StopReason.KILL:
        return RunState.FAILED, "killed"
    if stop is StopReason.TIMEOUT:
        return RunState.TIMEOUT, "stopped: it ran past its time limit"
    if stop is StopReason.SHUTDOWN or outcome is Outcome.CANCELLED:
        return RunState.INTERRUPTED, "interrupted by the daemon stopping"
    if outcome is Outcome.INTERRUPTED:
        return RunState.INTERRUPTED, error
    return RunState.FAILED, error


def should_retry(state: RunState, error: str | None, retries_left: int) -> bool:
    """Whether a run that just ended goes back to the queue by itself: a failure
    (not a kill) with ``--retries`` left."""
    return state is RunState.FAILED and error != "killed" and retries_left > 0


# -- dependencies -------------------------------------------------------------

# The ``--after`` runs of a queued run: all succeeded, some still to come, or
# one will never succeed (its dependent is cancelled).
DEPS_MET, DEPS_WAIT, DEPS_BROKEN = "met", "wait", "broken"


def deps_state(after: Sequence[int], states: dict[int, RunState]) -> tuple[str, str | None]:
    """How the runs of ``after`` stand, and why when one never will succeed.

    An interrupted run is still to come (the daemon queues it again);
    one removed from the queue, failed, cancelled, timed out or pruned breaks
    the chain.
    """
    for run_id in after:
        state = states.get(run_id)
        if state is None:
            return DEPS_BROKEN, f"run {run_id} it was to run after was removed"
        if state in (RunState.FAILED, RunState.CANCELLED, RunState.TIMEOUT, RunState.PRUNED):
            return DEPS_BROKEN, f"run {run_id} it was to run after ended {state.value}"
    if all(states.get(run_id) is RunState.SUCCESS for run_id in after):
        return DEPS_MET, None
    return DEPS_WAIT, None


# -- runs on a cluster ------------------------------------------------------


def remote_end(
    result: dict[str, object] | None, status: str, exit_code: int | None, message: str
) -> tuple[Outcome, str | None, int | None]:
    """(outcome, error, exit code) of a cluster job that ended in ``status``.

    The run's own last word (``result``, the worker's final pack) decides when
    it came. Without one, the worker never finished: a job stopped from the
    cluster, or one whose node or supervisor died, is interrupted (it runs
    again, a checkpoint run from its last checkpoint); an entrypoint that
    exited with an error by itself (exq missing on the node, say) failed.
    """
    if result is not None:
        outcome = result.get("outcome")
        if outcome == "success":
            return Outcome.SUCCESS, None, 0
        if outcome == "interrupted":
            return Outcome.INTERRUPTED, "the cluster stopped the job", None
        code = result.get("exit_code")
        return Outcome.FAILED, str(result.get("error")), code if isinstance(code, int) else None
    if status == "STOPPED":
        return Outcome.INTERRUPTED, "the cluster stopped the job", None
    if status == "SUCCEEDED" and not exit_code:
        return (
            Outcome.FAILED,
            "the job ended with status 0 but its result never reached the daemon:"
            " exq's last pack is missing from the job's output on the cluster",
            exit_code,
        )
    if status == "SUCCEEDED" or (exit_code is not None and exit_code > 0):
        detail = f"status {exit_code}" if exit_code is not None else "no result"
        return Outcome.FAILED, f"the job's entrypoint ended with {detail}: {message}", exit_code
    return Outcome.INTERRUPTED, f"the job failed on the cluster: {message}", None
