"""``repro``: bring the pipeline up to date, running stages concurrently.

For each selected stage, once its upstream stages are done: compare the lock
entry with the workspace; skip it when nothing changed, restore its outs from
the cache when only they are missing, otherwise remove its outs, run its
command, save its outs to the cache and record it in ``dvc.lock``. The lock
entry of a finished stage is written at once, so a later failure or Ctrl-C
keeps it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from exq.engine.errors import ExqError, StageFailed
from exq.engine.lockfile import update_lock
from exq.engine.pipeline import Pipeline
from exq.engine.runner import Outcome, OutputSink, SpawnHook, run_command, run_dag
from exq.engine.stage import Stage
from exq.engine.workspace import StageIO


@dataclass
class ReproOptions:
    """What the user asked of one ``repro``."""

    targets: list[str] = field(default_factory=list)
    force: bool = False
    single_item: bool = False
    jobs: int = 1
    dry: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    on_spawn: SpawnHook | None = None  # told each stage command's pid (the daemon)
    cwd: str = "."  # repo-relative folder that bare target names refer to, as in DVC


@dataclass
class ReproResult:
    """Which stages ran, were skipped, restored or failed."""

    ran: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    failed: StageFailed | None = None


def stage_env(root: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
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
    lock_guard = anyio.Lock()
    env = stage_env(pipeline.root, options.env)

    async def work(name: str) -> bool:
        try:
            return await attempt(name)
        except ExqError as exc:
            # e.g. a params file that no longer parses: this stage fails, not the
            # whole run with a traceback; finished stages keep their lock entries
            failure = exc if isinstance(exc, StageFailed) else StageFailed(name, exc.message)
            result.failed = result.failed or failure
            return False

    async def attempt(name: str) -> bool:
        stage = by_name[name]
        if stage.frozen:
            sink.note(f"Stage '{name}' is frozen, skipping")
            result.unchanged.append(name)
            return True
        upstream_runs = bool(preds[name] & would_run)
        reasons = await anyio.to_thread.run_sync(io.changes, pipeline, stage)
        if not reasons and not options.force and not upstream_runs:
            sink.note(f"Stage '{name}' didn't change, skipping")
            result.unchanged.append(name)
            return True
        if options.dry:
            would_run.add(name)
            _announce(sink, stage)
            return True
        if not options.force and await anyio.to_thread.run_sync(io.restore, pipeline, stage):
            sink.note(f"Stage '{name}' is cached: restored its outputs")
            result.restored.append(name)
            return True
        return await _run_stage(
            pipeline, io, stage, env, sink, lock_guard, result, options.on_spawn
        )

    outcomes = await run_dag(names, preds, work, jobs=options.jobs)
    failed = [name for name in names if outcomes.get(name) is Outcome.FAILED]
    if failed and result.failed is None:
        result.failed = StageFailed(failed[0], "failed")
    return result


def _announce(sink: OutputSink, stage: Stage) -> None:
    sink.note(f"Running stage '{stage.address}':")
    commands = [stage.cmd] if isinstance(stage.cmd, str) else stage.cmd
    for line in commands:
        sink.say(stage.address, f"> {line}")


async def _run_stage(
    pipeline: Pipeline,
    io: StageIO,
    stage: Stage,
    env: Mapping[str, str],
    sink: OutputSink,
    lock_guard: anyio.Lock,
    result: ReproResult,
    on_spawn: SpawnHook | None = None,
) -> bool:
    name = stage.address
    sink.note(f"Running stage '{name}':")
    await anyio.to_thread.run_sync(io.remove_outs, stage)
    cwd = pipeline.root / stage.wdir
    code = await run_command(
        stage.cmd, cwd=cwd, env=env, label=name, sink=sink, on_spawn=on_spawn
    )
    if code != 0:
        result.failed = StageFailed(name, f"command exited with code {code}", returncode=code)
        return False
    try:
        with anyio.CancelScope(shield=True):
            entry = await anyio.to_thread.run_sync(io.commit_outs, pipeline, stage)
            async with lock_guard:
                await anyio.to_thread.run_sync(
                    lambda: update_lock(
                        pipeline.lock_path(stage),
                        {stage.name: entry},
                        pipeline.stage_order(stage.dvcfile),
                    )
                )
    except StageFailed as exc:
        result.failed = exc
        return False
    except ExqError as exc:
        result.failed = StageFailed(name, exc.message)
        return False
    pipeline.locks.setdefault(stage.dvcfile, {})[stage.name] = entry
    result.ran.append(name)
    return True
