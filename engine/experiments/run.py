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

A pipeline with checkpoint stages makes a chain of commits instead, one per
checkpoint, and may resume an earlier chain (see :mod:`~exq.engine.experiments.chains` for
the rules, :mod:`~exq.engine.experiments.chain_commit` for the commits).
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from exq.engine.data.hashdb import STATE_RELPATH
from exq.engine.errors import ExperimentError
from exq.engine.experiments.chain_commit import ChainCommitter
from exq.engine.experiments.chains import (
    RESUME_ENV,
    ChainPlan,
    chain_ref,
    has_checkpoint_stages,
    held_checkpoint,
    inputs_modified,
    plan_chain,
)
from exq.engine.experiments.inputs import auto_name, check_clash, require_baseline, snapshot_inputs
from exq.engine.experiments.refs import check_exp_name, exp_ref, parse_exp_ref
from exq.engine.git import ANY, Git
from exq.engine.params.edit import (
    EditPlan,
    ParamChange,
    parse_set_params,
    plan_changes,
    write_plan,
)
from exq.engine.run.callbacks import NO_CALLBACKS, RunCallbacks
from exq.engine.run.commands import checkout
from exq.engine.run.project import Project
from exq.engine.run.repro import ReproOptions, ReproResult, repro
from exq.engine.run.runner import OutputSink
from exq.engine.run.workspace import StageIO
from exq.engine.spec.loading import load_pipeline

WORKTREES_DIR = ".dvc/tmp/exq/worktrees"


@dataclass
class ExpRunOptions:
    """What the user asked of one ``exp run``."""

    targets: list[str] = field(default_factory=list)
    set_params: list[str] = field(default_factory=list)
    name: str | None = None
    temp: bool = False
    force: bool = False
    stage_jobs: int = 1
    reset: bool = False  # checkpoint stages start over: their checkpoint outs are removed


@dataclass
class ExpRunResult:
    """The experiment made, or the stage failure that stopped it."""

    name: str
    baseline: str
    ref: str
    sha: str | None = None
    changes: list[ParamChange] = field(default_factory=list)
    repro: ReproResult | None = None


def exp_env(name: str, baseline: str, params: Sequence[str] = ()) -> dict[str, str]:
    """Variables for stage commands; DVC's names too, so DVC scripts work unchanged.
    ``EXQ_EXP_PARAMS``: the run's ``-S`` edits as a JSON list (exq.live's report
    shows them beside the name)."""
    return {
        "EXQ_EXP_NAME": name,
        "EXQ_EXP_BASELINE_REV": baseline,
        "EXQ_EXP_PARAMS": json.dumps(list(params)),
        "DVC_EXP_NAME": name,
        "DVC_EXP_BASELINE_REV": baseline,
    }


async def run_experiment(
    project: Project, options: ExpRunOptions, sink: OutputSink
) -> ExpRunResult:
    """Check everything, apply the -S edits, run, and commit the experiment."""
    git = Git.open(project.root)
    prepared = prepare_experiment(project, git, options)
    chain = _plan_workspace_chain(project, git, prepared, options)
    if chain is not None and chain.message:
        sink.note(chain.message)
    name = chain.name if chain is not None else prepared.name
    result = ExpRunResult(
        name=name,
        baseline=prepared.baseline,
        ref=exp_ref(prepared.baseline, name),
        changes=prepared.plan.changes,
    )
    env = exp_env(name, prepared.baseline, options.set_params)
    if options.temp:
        folder = project.root / WORKTREES_DIR / f"{name}-{secrets.token_hex(4)}"
        run = SnapshotRun(
            snapshot=prepared.inputs,
            baseline=prepared.baseline,
            name=name,
            targets=options.targets,
            stage_jobs=options.stage_jobs,
            env=env,
            reset=options.reset,
            checkpoint_parent=chain.parent if chain else None,
            resume=chain.resume if chain else False,
        )
        return await run_snapshot(project, run, folder, sink)
    write_plan(prepared.plan)
    if chain is None:
        repro_options = ReproOptions(
            targets=options.targets, stage_jobs=options.stage_jobs, env=env
        )
        result.repro = await _reproduce(project, repro_options, sink, None)
        if not result.repro.failed:
            result.sha = _commit(git, prepared.baseline, name)
            git.set_ref(result.ref, result.sha, message=f"exq: experiment {name}")
        return result
    hook = ChainCommitter(
        project,
        ref=result.ref,
        name=name,
        baseline=prepared.baseline,
        parent=chain.parent,
        marker=True,
    )
    repro_options = _checkpoint_options(
        options.targets,
        options.stage_jobs,
        env,
        hook,
        chain.resume,
        force=chain.kind != "new" or options.reset,
        reset=options.reset,
    )
    result.repro = await _reproduce(project, repro_options, sink, None)
    if not result.repro.failed:
        result.sha = await anyio.to_thread.run_sync(hook.finish)
    return result


def _plan_workspace_chain(
    project: Project, git: Git, prepared: Prepared, options: ExpRunOptions
) -> ChainPlan | None:
    """Resume, continue or start a checkpoint chain; None without checkpoint stages."""
    pipeline = load_pipeline(project.root)
    if not has_checkpoint_stages(pipeline, options.targets):
        return None
    prefix = git.prefix_of(project.root)
    with StageIO(project) as io:
        held = held_checkpoint(git, pipeline, io, prefix)
    modified = held is not None and inputs_modified(
        git, held.sha, prepared.inputs, pipeline, prefix
    )
    return plan_chain(
        held,
        modified=modified,
        reset=options.reset,
        new_name=prepared.name,
        explicit_name=options.name,
    )


def _checkpoint_options(
    targets: list[str],
    stage_jobs: int,
    env: dict[str, str],
    hook: ChainCommitter,
    resume: bool,
    *,
    force: bool,
    reset: bool,
    callbacks: RunCallbacks = NO_CALLBACKS,
    base_env: dict[str, str] | None = None,
) -> ReproOptions:
    return ReproOptions(
        targets=targets,
        stage_jobs=stage_jobs,
        env=env,
        base_env=base_env,
        checkpoint_hook=hook,
        checkpoint_env=dict(RESUME_ENV) if resume else {},
        force_checkpoint_stages=force,
        reset_checkpoints=reset,
        callbacks=callbacks,
    )


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
    stage_jobs: int = 1
    env: dict[str, str] = field(default_factory=dict)
    base_env: dict[str, str] | None = None  # what stages start from (None: this process's)
    # Checkpoint stages. The chain continues from ``checkpoint_parent`` (a chain
    # commit; None: a new chain on the baseline); ``resume`` sets EXQ_RESUME=1
    # and DVCLIVE_RESUME=1 for them; ``reset`` removes their checkpoint outs.
    checkpoint_parent: str | None = None
    resume: bool = False
    reset: bool = False
    callbacks: RunCallbacks = NO_CALLBACKS  # whoever runs it: pids, checkpoints, the lock
    # What the experiment ref's compare-and-set expects before the run's first
    # move of it (None: no ref); ANY: wherever it is when the run starts.
    expected_ref: Any = ANY  # a sha, None or ANY


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
    # A project in a sub-folder of its repository is in that sub-folder of the worktree.
    prefix = await anyio.to_thread.run_sync(lambda: Git.open(project.root).prefix_of(project.root))
    sub = Project(
        root=folder / prefix if prefix else folder,
        cache_dir=project.cache_dir,
        link_types=project.link_types,
    )
    state_db = project.root / STATE_RELPATH
    await anyio.to_thread.run_sync(_add_worktree, project.root, folder, run.snapshot)
    try:
        await anyio.to_thread.run_sync(_prepare_worktree, sub, state_db)
        hook = await anyio.to_thread.run_sync(_worktree_hook, sub, run, result.ref, state_db)
        if hook is None:
            options = ReproOptions(
                targets=run.targets,
                stage_jobs=run.stage_jobs,
                env=run.env,
                base_env=run.base_env,
                callbacks=run.callbacks,
            )
        else:
            options = _checkpoint_options(
                run.targets,
                run.stage_jobs,
                run.env,
                hook,
                run.resume,
                force=run.checkpoint_parent is not None or run.reset,
                reset=run.reset,
                callbacks=run.callbacks,
                base_env=run.base_env,
            )
        if run.callbacks.on_ready is not None:
            await run.callbacks.on_ready()
        result.repro = await _reproduce(sub, options, sink, state_db)
        if not result.repro.failed:
            if hook is not None:
                result.sha = await anyio.to_thread.run_sync(hook.finish)
            else:
                result.sha = await anyio.to_thread.run_sync(
                    _commit_worktree, project.root, folder, run, result.ref
                )
        return result
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_remove_worktree, project.root, folder)


def _worktree_hook(
    sub: Project, run: SnapshotRun, ref: str, state_db: Path
) -> ChainCommitter | None:
    """The chain committer of a worktree run, when its pipeline has checkpoint stages."""
    if not has_checkpoint_stages(load_pipeline(sub.root), run.targets):
        return None
    return ChainCommitter(
        sub,
        ref=ref,
        name=run.name,
        baseline=run.baseline,
        parent=run.checkpoint_parent,
        on_checkpoint=run.callbacks.on_checkpoint,
        state_db=state_db,
        expected=run.expected_ref,
    )


def resume_run(project: Project, sha: str, run: SnapshotRun) -> SnapshotRun:
    """``run`` made to resume the chain whose checkpoint commit is ``sha``.

    The worktree starts at that commit (its outs from the cache), the
    checkpoint stages run again with ``EXQ_RESUME=1``, and the chain goes on
    under the same experiment ref; the rest of ``run`` (targets, stage_jobs, env,
    callbacks) stays.
    """
    git = Git.open(project.root)
    ref = chain_ref(git.commit_info(sha).message)
    parsed = parse_exp_ref(ref) if ref else None
    if parsed is None:
        raise ExperimentError(f"commit {sha[:7]} is not a checkpoint of an experiment")
    return replace(
        run,
        snapshot=sha,
        baseline=parsed[0],
        name=parsed[1],
        checkpoint_parent=sha,
        resume=True,
        reset=False,
    )


def _add_worktree(root: Path, folder: Path, snapshot: str) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    Git.open(root).add_worktree(folder, snapshot)


def _prepare_worktree(sub: Project, state_db: Path) -> None:
    """Link the outs of unchanged stages from the cache (the -S edits are in the
    snapshot already: they were applied when it was taken)."""
    (sub.root / ".dvc").mkdir(exist_ok=True)
    # Outs missing from the cache are left out: their stages run again.
    checkout(sub, [], state_db=state_db, missing_ok=True)


def _commit_worktree(root: Path, folder: Path, run: SnapshotRun, ref: str) -> str:
    sha = _commit(Git.open(folder), run.baseline, run.name)
    Git.open(root).set_ref(
        ref, sha, expected_old=run.expected_ref, message=f"exq: experiment {run.name}"
    )
    return sha


def _remove_worktree(root: Path, folder: Path) -> None:
    Git.open(root).remove_worktree(folder)
    shutil.rmtree(folder, ignore_errors=True)


async def _reproduce(
    project: Project, options: ReproOptions, sink: OutputSink, state_db: Path | None
) -> ReproResult:
    pipeline = load_pipeline(project.root)
    with StageIO(project, state_db=state_db) as io:
        return await repro(pipeline, io, options, sink)


def _commit(git: Git, baseline: str, name: str) -> str:
    return git.snapshot_workspace(f"exq: experiment {name}", parent=baseline)
