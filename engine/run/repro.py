"""``repro``: bring the pipeline up to date, running stages concurrently.

For each selected stage, once its upstream stages are done: compare the lock
entry with the workspace; skip it when nothing changed, restore its outs from
the cache when only they are missing, otherwise remove its outs, run its
command, save its outs to the cache and record it in ``dvc.lock``. The lock
entry of a finished stage is written at once, so a later failure or Ctrl-C
keeps it.

Checkpoint stages (outs with ``checkpoint: true``) keep their checkpoint outs
between runs, and, with a ``CheckpointHook`` in the options, get the
checkpoint channels: at each signal their outs are saved, their lock entry
written, and the hook commits (see :mod:`~exq.engine.run.checkpoint_session`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from exq.engine.errors import ExqError, StageFailed
from exq.engine.run.callbacks import NO_CALLBACKS, RunCallbacks
from exq.engine.run.checkpoint_session import CheckpointHook, CheckpointSession
from exq.engine.run.live_report import render_requested_report
from exq.engine.run.runner import Outcome, OutputSink, run_command, run_dag
from exq.engine.run.workspace import StageIO
from exq.engine.spec.loading import Pipeline
from exq.engine.spec.lockfile import LockEntry, update_lock
from exq.engine.spec.stage import Stage


@dataclass
class ReproOptions:
    """What the user asked of one ``repro``."""

    targets: list[str] = field(default_factory=list)
    force: bool = False
    single_item: bool = False
    stage_jobs: int = 1
    dry: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    # The environment stage commands start from (``env`` goes on top); None:
    # this process's. A queued run brings the one it was queued from.
    base_env: Mapping[str, str] | None = None
    cwd: str = "."  # repo-relative folder that bare target names refer to, as in DVC
    # Checkpoint stages (outs with `checkpoint: true`): without a hook their
    # commands run as any other (make_checkpoint is then a no-op).
    checkpoint_hook: CheckpointHook | None = None
    checkpoint_env: Mapping[str, str] = field(default_factory=dict)  # e.g. EXQ_RESUME=1
    force_checkpoint_stages: bool = False  # run them even when unchanged (a resumed chain)
    reset_checkpoints: bool = False  # remove their checkpoint outs first (exp run --reset)
    callbacks: RunCallbacks = NO_CALLBACKS  # the daemon's: stage pids, the snapshot lock


@dataclass
class ReproResult:
    """Which stages ran, were skipped, restored or failed."""

    ran: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    failed: StageFailed | None = None
    # Seconds from each command's start to its lock entry, for the stages whose
    # command ran (a failed one too), in the order they finished.
    durations: dict[str, float] = field(default_factory=dict)


def stage_env(
    root: Path, extra: Mapping[str, str], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update({"EXQ_ROOT": str(root), "DVC_ROOT": str(root)})
    env.update(extra)
    return env


async def repro(
    pipeline: Pipeline, io: StageIO, options: ReproOptions, sink: OutputSink
) -> ReproResult:
    """Run what is out of date among ``options.targets`` (all stages by default)."""
    selected = pipeline.graph.select(
        options.targets, single_item=options.single_item, cwd=options.cwd
    )
    names = [stage.address for stage in selected]
    by_name = {stage.address: stage for stage in selected}
    # nearest selected ancestors: `repro -s a c` must still run a before c
    preds = pipeline.graph.predecessors(selected)
    result = ReproResult()
    would_run: set[str] = set()
    run = _StageRun(
        pipeline, io, options, sink, result, stage_env(pipeline.root, options.env, options.base_env)
    )

    async def work(name: str) -> bool:
        try:
            return await attempt(name)
        except ExqError as exc:
            # e.g. a params file that no longer parses: this stage fails, not the
            # whole run with a traceback; finished stages keep their lock entries
            failure = exc if isinstance(exc, StageFailed) else StageFailed(name, str(exc))
            result.failed = result.failed or failure
            return False

    async def attempt(name: str) -> bool:
        stage = by_name[name]
        if stage.frozen:
            sink.note(f"Stage '{name}' is frozen, skipping")
            result.unchanged.append(name)
            return True
        upstream_runs = bool(preds[name] & would_run)
        force = options.force or (options.force_checkpoint_stages and stage.has_checkpoints)
        reasons = await anyio.to_thread.run_sync(io.changes, pipeline, stage)
        if not reasons and not force and not upstream_runs:
            sink.note(f"Stage '{name}' didn't change, skipping")
            result.unchanged.append(name)
            return True
        if options.dry:
            would_run.add(name)
            _announce(sink, stage)
            return True
        if not force and await anyio.to_thread.run_sync(io.restore, pipeline, stage):
            sink.note(f"Stage '{name}' is cached: restored its outputs")
            result.restored.append(name)
            return True
        return await run.stage(stage)

    outcomes = await run_dag(names, preds, work, jobs=options.stage_jobs)
    failed = [name for name in names if outcomes.get(name) is Outcome.FAILED]
    if failed and result.failed is None:
        result.failed = StageFailed(failed[0], "failed")
    return result


def _announce(sink: OutputSink, stage: Stage) -> None:
    sink.note(f"Running stage '{stage.address}':")
    commands = [stage.cmd] if isinstance(stage.cmd, str) else stage.cmd
    for line in commands:
        sink.say(stage.address, f"> {line}")


@dataclass
class _StageRun:
    """Running one stage's command and recording its outs, within one ``repro``."""

    pipeline: Pipeline
    io: StageIO
    options: ReproOptions
    sink: OutputSink
    result: ReproResult
    env: dict[str, str]
    lock_guard: anyio.Lock = field(default_factory=anyio.Lock)
    # One checkpoint stage at a time: DVC's signal file has one name per project.
    checkpoint_guard: anyio.Lock = field(default_factory=anyio.Lock)
    # Why a stage's checkpoint was refused: its command then fails, and this says why.
    refused: dict[str, str] = field(default_factory=dict)

    async def stage(self, stage: Stage) -> bool:
        """Run the stage's command, save its outs, write its lock entry."""
        name = stage.address
        try:
            await anyio.to_thread.run_sync(self.io.check_inputs, stage)
        except StageFailed as exc:
            self.result.failed = exc
            return False
        self.sink.note(f"Running stage '{name}':")
        started = time.monotonic()
        try:
            return await self._run_and_record(stage)
        finally:
            self.result.durations[name] = time.monotonic() - started

    async def _run_and_record(self, stage: Stage) -> bool:
        name = stage.address
        reset = self.options.reset_checkpoints
        await anyio.to_thread.run_sync(lambda: self.io.remove_outs(stage, reset=reset))
        env = {**self.env, **stage.live_env()}
        hook = self.options.checkpoint_hook if stage.has_checkpoints else None
        if hook is None:
            code = await self._command(stage, env)
        else:
            async with self.checkpoint_guard:
                code = await self._checkpointed(stage, {**env, **self.options.checkpoint_env}, hook)
        await self._live_report(stage, final=True)
        if code != 0:
            why = f"command exited with code {code}"
            if name in self.refused:
                why += f" after exq refused its checkpoint: {self.refused[name]}"
            self.result.failed = StageFailed(name, why, returncode=code)
            return False
        try:
            with anyio.CancelScope(shield=True):
                entry = await anyio.to_thread.run_sync(self.io.commit_outs, self.pipeline, stage)
                await self._write_lock(stage, entry)
        except StageFailed as exc:
            self.result.failed = exc
            return False
        except ExqError as exc:
            self.result.failed = StageFailed(name, exc.message)
            return False
        self.result.ran.append(name)
        return True

    async def _command(self, stage: Stage, env: Mapping[str, str]) -> int:
        return await run_command(
            stage.cmd,
            cwd=self.pipeline.root / stage.wdir,
            env=env,
            label=stage.address,
            sink=self.sink,
            on_spawn=self.options.callbacks.on_spawn,
        )

    async def _live_report(self, stage: Stage, *, final: bool) -> None:
        """A dvclive 0.x logger asked for its report (DVC 2 rendered it): render it."""
        if stage.live is not None:
            root = self.pipeline.root
            env = self.env
            await anyio.to_thread.run_sync(
                lambda: render_requested_report(root, stage, final=final, env=env)
            )

    async def _write_lock(self, stage: Stage, entry: LockEntry) -> None:
        async with self.lock_guard:
            await anyio.to_thread.run_sync(
                lambda: update_lock(
                    self.pipeline.lock_path(stage),
                    {stage.name: entry},
                    self.pipeline.stage_order(stage.dvcfile),
                )
            )
        self.pipeline.locks.setdefault(stage.dvcfile, {})[stage.name] = entry

    async def _interrupted(self, hook: CheckpointHook, stage: Stage) -> None:
        kept = await hook.interrupted(stage)
        if kept:
            self.sink.note(kept)

    async def _checkpointed(
        self, stage: Stage, env: Mapping[str, str], hook: CheckpointHook
    ) -> int:
        """Run a checkpoint stage's command, committing each checkpoint it signals.

        When the command stops short (Ctrl-C, a failure), the hook puts the last
        checkpoint back in place, so the workspace holds what was committed.
        """

        async def on_signal(step: int | None) -> None:
            await self._live_report(stage, final=False)
            entry = await anyio.to_thread.run_sync(
                lambda: self.io.commit_outs(self.pipeline, stage, checkpoint=True)
            )
            await self._write_lock(stage, entry)
            await hook.checkpoint(stage, step)

        callbacks = self.options.callbacks
        session = CheckpointSession(
            on_signal,
            dvc_root=self.pipeline.root,
            lock=callbacks.snapshot_lock,
            stopping=callbacks.stopping,
        )
        try:
            code = await session.run(lambda extra: self._command(stage, {**env, **extra}))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._interrupted(hook, stage)
            raise
        if code != 0:
            if session.errors:
                self.refused[stage.address] = session.errors[-1]
            with anyio.CancelScope(shield=True):
                await self._interrupted(hook, stage)
        elif session.errors:
            self.sink.note(f"Stage '{stage.address}': a checkpoint failed: {session.errors[0]}")
        return code
