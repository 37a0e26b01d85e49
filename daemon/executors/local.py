"""The local executor: running a queued run with the engine, on this machine.

:func:`execute` runs a claimed row: a detached worktree at its snapshot under
the state dir (the ``-S`` edits are in the snapshot already: they were applied
at enqueue), the cached outs linked in, the pipeline, the commit to
``refs/exps/...``, the worktree removed (all of that is
:func:`exq.engine.experiments.run.run_snapshot`). Its output goes to the run's
own log file. Stage commands run in the environment the run was queued from
(``exq exp run --queue`` captured it: the user's PATH, virtualenv, variables),
with the variables of :func:`~exq.daemon.executors.base.run_env` on top.

The token of an attempt (``EXQ_RUN_TOKEN``) is how the daemon knows a process
is a run's: before it signals a recorded process group (whose leader may be
gone and its pid reused), and when a restarted daemon reaps what a SIGKILLed
one left behind, it reads ``/proc/<pid>/environ`` and only touches processes
carrying the token (the functions under "processes" below).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import anyio

from exq.daemon.config import DaemonConfig
from exq.daemon.executors.base import (
    TOKEN_VAR,
    ExecResult,
    RunHooks,
    latest_checkpoint,
    run_env,
)
from exq.daemon.resources import Machine
from exq.daemon.states import Outcome
from exq.daemon.store import RunProcess, RunRecord
from exq.engine.errors import ExqError
from exq.engine.experiments.queue_snapshot import replaces_experiment
from exq.engine.experiments.refs import exp_ref, expected_tip
from exq.engine.experiments.run import SnapshotRun, resume_run, run_snapshot
from exq.engine.git import Git
from exq.engine.run.project import Project, open_project
from exq.engine.run.runner import OutputSink

PROC = Path("/proc")
PROGRESS_VAR = "EXQ_PROGRESS_FILE"  # exq.live writes its step and total there


class LocalExecutor:
    """Runs in a worktree of the run's repository, on this machine."""

    def __init__(self, config: DaemonConfig, machine: Machine | None = None) -> None:
        self._config = config
        self._machine = machine

    async def execute(self, run: RunRecord, *, slot: int, hooks: RunHooks) -> ExecResult:
        return await execute(
            run, config=self._config, slot=slot, hooks=hooks, machine=self._machine
        )


def worktree_path(config: DaemonConfig, run: RunRecord) -> Path:
    return config.worktree_path(run.id, run.attempts)


async def _mark_ready(config: DaemonConfig, run: RunRecord) -> None:
    """The attempt's worktree is ready: ``queue status`` reads none of the files
    older than this mark (the baseline's results in the snapshot, say)."""
    path = config.ready_path(run.id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch()


def snapshot_run(
    project: Project,
    run: RunRecord,
    config: DaemonConfig,
    slot: int,
    hooks: RunHooks,
    machine: Machine | None = None,
) -> SnapshotRun:
    """The engine's run of one attempt: from the snapshot, or from ``run.resume_sha``.
    The ``-S`` edits are in the snapshot already: they were applied at enqueue."""
    git = Git.open(project.root)
    snapshot = SnapshotRun(
        snapshot=run.snapshot,
        baseline=run.baseline,
        name=run.name,
        targets=list(run.targets),
        stage_jobs=run.stage_jobs or os.cpu_count() or 1,
        env={
            **run_env(run, config, slot, machine),
            PROGRESS_VAR: str(config.progress_path(run.id)),
        },
        base_env=run.env,
        # A queued run is a new experiment: its checkpoint stages start from
        # scratch, whatever checkpoint the snapshotted workspace held (as DVC's
        # queue does); only a resumed attempt trains on, from its own chain.
        reset=True,
        callbacks=replace(hooks.callbacks, on_ready=partial(_mark_ready, config, run)),
        # The run only ever moves its experiment ref from nothing or from its own
        # commits, unless it was queued with -f to replace what is there.
        expected_ref=expected_tip(
            git,
            exp_ref(run.baseline, run.name),
            own=run.resume_sha or run.experiment_sha,
            replace=replaces_experiment(git, run.snapshot),
        ),
    )
    if run.resume_sha:
        return resume_run(project, latest_checkpoint(project, run), snapshot)
    return snapshot


async def execute(
    run: RunRecord,
    *,
    config: DaemonConfig,
    slot: int,
    hooks: RunHooks,
    machine: Machine | None = None,
) -> ExecResult:
    """Run one claimed run to its end; user-level errors become a failed result."""
    assert run.log_path is not None, "a claimed run has a log path"
    log_path = Path(run.log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(log_path, "ab") as stream:
        sink = OutputSink(stream=stream, prefixed=(run.stage_jobs or os.cpu_count() or 1) > 1)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        sink.note(f"exq: run {run.id} '{run.name}', attempt {run.attempts}, slot {slot}, {stamp}")
        # Until this attempt's worktree is ready, none of its files are the attempt's.
        config.ready_path(run.id).unlink(missing_ok=True)
        try:
            project = open_project(Path(run.repo))
            snapshot = await anyio.to_thread.run_sync(
                snapshot_run, project, run, config, slot, hooks, machine
            )
            if run.resume_sha:
                sink.note(f"exq: resuming from checkpoint {run.resume_sha[:7]}")
            result = await run_snapshot(project, snapshot, worktree_path(config, run), sink)
        except ExqError as exc:
            sink.note(f"exq: error: {exc}")
            return ExecResult(Outcome.FAILED, error=str(exc))
        failed = result.repro.failed if result.repro is not None else None
        if failed is not None:
            sink.note(f"exq: failed: {failed}")
            return ExecResult(Outcome.FAILED, exit_code=failed.returncode, error=str(failed))
        sink.note(f"exq: experiment '{result.name}' saved as {result.ref}")
        return ExecResult(
            Outcome.SUCCESS, exit_code=0, experiment_ref=result.ref, experiment_sha=result.sha
        )


# -- processes --------------------------------------------------------------


def start_ticks(pid: int) -> int:
    """The start time of ``pid`` in clock ticks since boot (0 if unknown)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else 0


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp [2])."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def has_token(pid: int, token: str) -> bool:
    """Whether ``pid`` runs with ``EXQ_RUN_TOKEN=token`` in its environment."""
    if not token:
        return False
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return f"{TOKEN_VAR}={token}".encode() in environ.split(b"\0")


def _alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _own_pids() -> list[int]:
    uid = os.getuid()
    pids = []
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def group_members(pgid: int, token: str) -> list[int]:
    """Live processes of group ``pgid`` that carry ``token``."""
    members = []
    for pid in _own_pids():
        fields = _stat_fields(pid)
        if fields is None or fields[0] in ("Z", "X") or int(fields[2]) != pgid:
            continue
        if has_token(pid, token):
            members.append(pid)
    return members


def signal_group(pgid: int, token: str, signum: int) -> bool:
    """Send ``signum`` to process group ``pgid`` if a live member carries ``token``.

    Without /proc (not Linux) the group is signalled unchecked. Returns whether
    a signal was sent.
    """
    if PROC.is_dir() and not (has_token(pgid, token) or group_members(pgid, token)):
        return False
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def reap_leftovers(procs: Iterable[RunProcess], tokens: Iterable[str]) -> list[int]:
    """SIGKILL what dead daemons' runs left: the recorded groups, and any other
    process carrying one of ``tokens`` (a stage that left its group, or one that
    started after its pid was recorded). Returns the pids found alive."""
    wanted = {t for t in tokens if t}
    found: set[int] = set()
    for proc in procs:
        members = group_members(proc.pid, proc.token)
        if members:
            found.update(members)
            _send(os.killpg, proc.pid)
    for pid in _own_pids():
        if pid != os.getpid() and _alive(pid) and any(has_token(pid, t) for t in wanted):
            found.add(pid)
            _send(os.kill, pid)
    return sorted(found)


def _send(kill: Callable[[int, int], None], target: int) -> None:
    try:
        kill(target, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def any_alive(pids: Iterable[int]) -> bool:
    """Whether one of ``pids`` is still running (zombies count as dead)."""
    return any(_alive(pid) for pid in pids)
