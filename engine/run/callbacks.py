"""What a run tells whoever started it, as it goes: one :class:`RunCallbacks`
object handed from the daemon's scheduler (or the Ray worker) through the
experiment run and ``repro`` down to the runner and the checkpoint session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

# Called with the pid (= process group id) of each command as soon as it starts;
# the daemon records it so that a restarted daemon can reap a dead one's stages.
SpawnHook = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class CheckpointEvent:
    """One checkpoint committed: for progress reports (the daemon's step count)."""

    sha: str
    ref: str
    name: str
    count: int  # checkpoints committed by this run so far
    step: int | None  # the step the script reported


CheckpointCallback = Callable[[CheckpointEvent], Awaitable[None]]


@dataclass(frozen=True)
class RunCallbacks:
    """The callbacks of one run; each is optional (a plain ``exq repro`` has none)."""

    on_spawn: SpawnHook | None = None  # told each stage command's pid
    on_checkpoint: CheckpointCallback | None = None  # told each checkpoint committed
    # Held while a checkpoint snapshot is under way: the daemon sends no signal
    # to the run's processes while it is locked. None: each stage its own lock.
    snapshot_lock: anyio.Lock | None = None
    # True once the run was told to stop (a kill, a prune, a time limit): a
    # checkpoint asked for after that is refused, so the chain ends where it stopped.
    stopping: Callable[[], bool] | None = None
    # Called once a worktree run's worktree is ready (checked out, cached outs
    # linked), before its first stage: what it holds then is not the run's doing.
    on_ready: Callable[[], Awaitable[None]] | None = None


NO_CALLBACKS = RunCallbacks()
