"""``exp run``: run the pipeline as an experiment and commit it under refs/exps.

An experiment is one commit whose tree is the baseline plus every change in
the workspace after the run (code, params, dvc.lock, untracked files git does
not ignore), whose one parent is the baseline, and which a ref
``refs/exps/<baseline[:2]>/<baseline[2:]>/<name>`` points at. HEAD, the index
and branches never move.

Without a name, the experiment is called ``exp-`` and five hex digits of a hash
of its inputs: the baseline and the tree it starts from (params, code and the
lock it reproduces). The name is known before the run, so stage commands get
it in ``EXQ_EXP_NAME``/``DVC_EXP_NAME``; the same inputs give the same name.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import anyio


from exq.engine.expinputs import auto_name, check_clash, require_baseline, snapshot_inputs
from exq.engine.exprefs import check_exp_name, exp_ref
from exq.engine.git import Git
from exq.engine.paramedit import (
    EditPlan,
    ParamChange,
    parse_set_params,
    plan_changes,
    write_plan,
)
from exq.engine.pipeline import load_pipeline
from exq.engine.pipeline_ops import checkout
from exq.engine.repo import Project
from exq.engine.repro import ReproOptions, ReproResult, repro
from exq.engine.runner import OutputSink, SpawnHook
from exq.engine.state import STATE_RELPATH
from exq.engine.workspace import StageIO

WORKTREES_DIR = ".dvc/tmp/exq/worktrees"


@dataclass
class ExpRunOptions:
    """What the user asked of one ``exp run``."""

    targets: list[str] = field(default_factory=list)
    set_params: list[str] = field(default_factory=list)
    name: str | None = None
    temp: bool = False
    force: bool = False
    jobs: int = 1


@dataclass
class ExpRunResult:
    """The experiment made, or the stage failure that stopped it."""

    name: str
    baseline: str
    ref: str
    sha: str | None = None
    changes: list[ParamChange] = field(default_factory=list)
    repro: ReproResult | None = None


def exp_env(name: str, baseline: str) -> dict[str, str]:
    """Variables for stage commands; DVC's names too, so DVC scripts work unchanged."""
    return {
        "EXQ_EXP_NAME": name, "EXQ_EXP_BASELINE_REV": baseline,
        "DVC_EXP_NAME": name, "DVC_EXP_BASELINE_REV": baseline,
    }


async def run_experiment(
    project: Project, options: ExpRunOptions, sink: OutputSink
) -> ExpRunResult:
    """Check everything, apply the -S edits, run, and commit the experiment."""
    git = Git.open(project.root)
    prepared = prepare_experiment(project, git, options)
    result = ExpRunResult(
        name=prepared.name, baseline=prepared.baseline, ref=prepared.ref,
        changes=prepared.plan.changes,
    )
    env = exp_env(prepared.name, prepared.baseline)
    if options.temp:
        folder = project.root / WORKTREES_DIR / f"{prepared.name}-{secrets.token_hex(4)}"
        run = SnapshotRun(
            snapshot=prepared.inputs, baseline=prepared.baseline, name=prepared.name,
            targets=options.targets, jobs=options.jobs, env=env,
        )
        return await run_snapshot(project, run, folder, sink)
    write_plan(prepared.plan)
    result.repro = await _reproduce(project, options.targets, options.jobs, env, sink, None)
    if not result.repro.failed:
        result.sha = _commit(git, prepared.baseline, prepared.name)
        git.set_ref(result.ref, result.sha, message=f"exq: experiment {prepared.name}")
    return result


@dataclass
class Prepared:
    """An experiment checked and named, nothing changed yet."""

    baseline: str
    name: str
    ref: str
    plan: EditPlan
    inputs: str  # commit of the workspace with the -S edits applied


def prepare_experiment(project: Project, git: Git, options: ExpRunOptions) -> Prepared:
    """Validate the name and the -S edits and snapshot the inputs, changing nothing.

    Raises before anything is written: a bad -S, a bad name, a name clash.
    """
    baseline = require_baseline(git)
    if options.name is not None:
        check_exp_name(options.name)
        check_clash(git, baseline, options.name, options.force)
    plan = plan_changes(project.root, parse_set_params(options.set_params))
    inputs = snapshot_inputs(project, git, baseline, plan, "exq: experiment inputs")
    name = options.name or auto_name(baseline, git.tree_of(inputs))
    ref = exp_ref(baseline, name)
    return Prepared(baseline=baseline, name=name, ref=ref, plan=plan, inputs=inputs)


@dataclass
class SnapshotRun:
    """An experiment to run from a commit (a --temp run, or a queued one)."""

    snapshot: str
    baseline: str
    name: str
    targets: list[str] = field(default_factory=list)
    jobs: int = 1
    env: dict[str, str] = field(default_factory=dict)
    set_params: list[str] = field(default_factory=list)  # applied in the worktree
    on_spawn: SpawnHook | None = None  # told each stage command's pid (the daemon)


async def run_snapshot(
    project: Project, run: SnapshotRun, folder: Path, sink: OutputSink
) -> ExpRunResult:
    """Run in a detached worktree at ``run.snapshot``, sharing the project's cache.

    The worktree gets the -S edits, the outs recorded in its dvc.lock from the
    cache (so unchanged stages are skipped), and the result is committed to
    the experiment ref. The worktree is removed whatever happens.
    """
    result = ExpRunResult(name=run.name, baseline=run.baseline, ref=exp_ref(run.baseline, run.name))
    # Git and cache work runs in worker threads (a Git per thread, as pygit2
    # wants), so a daemon's socket and other slots are not stalled meanwhile.
    sub = Project(root=folder, cache_dir=project.cache_dir, link_types=project.link_types)
    state_db = project.root / STATE_RELPATH
    await anyio.to_thread.run_sync(_add_worktree, project.root, folder, run.snapshot)
    try:
        result.changes = await anyio.to_thread.run_sync(_prepare_worktree, sub, run, state_db)
        result.repro = await _reproduce(
            sub, run.targets, run.jobs, run.env, sink, state_db, on_spawn=run.on_spawn
        )
        if not result.repro.failed:
            result.sha = await anyio.to_thread.run_sync(
                _commit_worktree, project.root, folder, run, result.ref
            )
        return result
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_remove_worktree, project.root, folder)


def _add_worktree(root: Path, folder: Path, snapshot: str) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    Git.open(root).add_worktree(folder, snapshot)


def _prepare_worktree(sub: Project, run: SnapshotRun, state_db: Path) -> list[ParamChange]:
    """Apply the -S edits and link the outs of unchanged stages from the cache."""
    (sub.root / ".dvc").mkdir(exist_ok=True)
    plan = plan_changes(sub.root, parse_set_params(run.set_params))
    write_plan(plan)
    # Outs missing from the cache are left out: their stages run again.
    checkout(sub, [], state_db=state_db, missing_ok=True)
    return plan.changes


def _commit_worktree(root: Path, folder: Path, run: SnapshotRun, ref: str) -> str:
    sha = _commit(Git.open(folder), run.baseline, run.name)
    Git.open(root).set_ref(ref, sha, message=f"exq: experiment {run.name}")
    return sha


def _remove_worktree(root: Path, folder: Path) -> None:
    Git.open(root).remove_worktree(folder)
    shutil.rmtree(folder, ignore_errors=True)


async def _reproduce(
    project: Project, targets: list[str], jobs: int, env: dict[str, str],
    sink: OutputSink, state_db: Path | None, on_spawn: SpawnHook | None = None,
) -> ReproResult:
    pipeline = load_pipeline(project.root)
    options = ReproOptions(targets=targets, jobs=jobs, env=env, on_spawn=on_spawn)
    with StageIO(project, state_db=state_db) as io:
        return await repro(pipeline, io, options, sink)


def _commit(git: Git, baseline: str, name: str) -> str:
    return git.snapshot_workspace(f"exq: experiment {name}", parent=baseline)
