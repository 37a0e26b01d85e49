"""What every executor shares: the :class:`Executor` protocol and what it returns.

An executor takes a claimed row and runs it to an :class:`ExecResult`.
:class:`~exq.daemon.executors.local.LocalExecutor`, the default, runs it here
in a worktree; the Ray executor (``exq.daemon.executors.ray.executor``) sends
it to a cluster and is imported only when a run asks for it.

The scheduler hears of a run while it goes on through :class:`RunHooks`, whose
``callbacks`` (:class:`~exq.engine.run.callbacks.RunCallbacks`) go down to the
engine as they are: each stage's pid, each checkpoint committed (the scheduler
records it in the store at once), and the snapshot lock, held while a
checkpoint snapshot is under way. A run whose row has a
``resume_sha`` (an interrupted checkpoint run) resumes from that checkpoint
commit, or a later one on its ref (:func:`latest_checkpoint`), instead of
starting from its snapshot.

Stage commands see ``EXQ_RUN_ID``, ``EXQ_WORKER_SLOT``, ``EXQ_RUN_TOKEN`` (a
random token of the attempt) and, on a machine with GPUs, the devices the run
holds: ``CUDA_VISIBLE_DEVICES`` and ``EXQ_GPUS``, empty for a run that asked
for none (:func:`run_env`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from exq.daemon.config import DaemonConfig
from exq.daemon.resources import Machine, gpu_env
from exq.daemon.states import Outcome
from exq.daemon.store import RunRecord
from exq.engine.errors import ExqError
from exq.engine.experiments.run import exp_env
from exq.engine.git import Git
from exq.engine.run.callbacks import RunCallbacks
from exq.engine.run.project import Project

TOKEN_VAR = "EXQ_RUN_TOKEN"


@dataclass(frozen=True)
class ExecResult:
    """How one attempt of a run came back (the scheduler picks the end state)."""

    outcome: Outcome
    exit_code: int | None = None
    error: str | None = None
    experiment_ref: str | None = None
    experiment_sha: str | None = None


def run_env(
    run: RunRecord, config: DaemonConfig, slot: int, machine: Machine | None = None
) -> dict[str, str]:
    """Extra variables for the run's stage commands (on top of the environment
    it was queued from); on this ``machine``, the GPUs it holds."""
    return {
        **exp_env(run.name, run.baseline, run.params),
        **config.extra_env,
        **(gpu_env(run.gpus_assigned, machine) if machine is not None else {}),
        "EXQ_RUN_ID": str(run.id),
        "EXQ_WORKER_SLOT": str(slot),
        TOKEN_VAR: run.token or "",
    }


# -- where a run goes: "local", or "ray ADDRESS" (then "ray ADDRESS node ID") ----

LOCAL = "local"


def location_of(kind: str, ray_address: str) -> str:
    """Where a run of executor ``kind`` goes, before it starts."""
    return LOCAL if kind == LOCAL else f"ray {ray_address}"


def is_remote_location(location: str | None) -> bool:
    """Whether a run's attempt went to a cluster (it may still run there)."""
    return bool(location) and location != LOCAL


def ray_address_of(location: str) -> str:
    """The cluster address of a remote location."""
    return location.split()[1]


def pending_location(address: str, needs: str) -> str:
    """Where a run waits that its cluster keeps pending: ``ray ADDRESS pending (needs ...)``."""
    return f"ray {address} pending" + (f" (needs {needs})" if needs else "")


def is_pending_location(location: str | None) -> bool:
    """Whether a run waits on its cluster for resources (it holds no slot then)."""
    return location is not None and location.split()[2:3] == ["pending"]


class RemoteJob(Protocol):
    """A run handed to a cluster: the scheduler stops it through this."""

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class RunHooks:
    """What the scheduler hears of a run while it goes on."""

    callbacks: RunCallbacks  # what the engine tells as the run goes (pids, checkpoints)
    # A cluster took the run: its stop goes through the job from then on; the
    # location, when given, says more of where it runs (its node).
    on_remote: Callable[[RemoteJob, str | None], Awaitable[None]] | None = None
    adopted: bool = False  # a run a previous daemon left running on a cluster


class Executor(Protocol):
    """Runs claimed runs somewhere."""

    async def execute(self, run: RunRecord, *, slot: int, hooks: RunHooks) -> ExecResult: ...


def latest_checkpoint(project: Project, run: RunRecord) -> str:
    """Where an interrupted checkpoint run resumes: its recorded checkpoint, or a
    later one on its ref (a daemon killed between moving the ref and writing the
    row recorded one checkpoint too few)."""
    assert run.resume_sha is not None
    if not run.experiment_ref:
        return run.resume_sha
    try:
        git = Git.open(project.root)
        tip = git.get_ref(run.experiment_ref)
        if tip is not None and tip != run.resume_sha and git.is_ancestor(run.resume_sha, tip):
            return tip
    except ExqError:
        pass  # the recorded checkpoint is the safe choice
    return run.resume_sha
