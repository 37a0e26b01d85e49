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

import hashlib
import secrets
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from exq.engine.errors import ExperimentError, GitError
from exq.engine.exprefs import check_exp_name, exp_ref
from exq.engine.git import Git
from exq.engine.paramedit import ParamChange, parse_set_params, plan_changes, write_plan
from exq.engine.pipeline import load_pipeline
from exq.engine.pipeline_ops import checkout
from exq.engine.repo import Project
from exq.engine.repro import ReproOptions, ReproResult, repro
from exq.engine.runner import OutputSink
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


def auto_name(baseline: str, input_tree: str) -> str:
    digest = hashlib.sha256(f"{baseline}:{input_tree}".encode()).hexdigest()
    return f"exp-{digest[:5]}"


async def run_experiment(
    project: Project, options: ExpRunOptions, sink: OutputSink
) -> ExpRunResult:
    """Check everything, apply the -S edits, run, and commit the experiment."""
    git = Git.open(project.root)
    baseline = git.head_sha()
    if baseline is None:
        raise GitError("the repository has no commit yet", hint="commit your project first")
    if options.name is not None:
        check_exp_name(options.name)
    plan = plan_changes(project.root, parse_set_params(options.set_params))
    extra = {
        path.relative_to(project.root).as_posix(): data for path, data in plan.files.items()
    }
    inputs = git.snapshot_workspace("exq: experiment inputs", parent=baseline, extra=extra)
    name = options.name or auto_name(baseline, git.tree_of(inputs))
    ref = exp_ref(baseline, name)
    if options.name is not None and git.get_ref(ref) is not None and not options.force:
        raise ExperimentError(
            f"experiment '{name}' already exists for baseline {baseline[:7]}",
            hint="choose another --name, or pass -f to replace it",
        )
    result = ExpRunResult(name=name, baseline=baseline, ref=ref, changes=plan.changes)
    reproduce = _repro_runner(options, exp_env(name, baseline), sink)
    if options.temp:
        sha = await _run_in_worktree(project, git, inputs, baseline, reproduce, result)
    else:
        write_plan(plan)
        result.repro = await reproduce(project, None)
        sha = None if result.repro.failed else _commit(git, baseline, name)
    if sha is not None:
        git.set_ref(ref, sha, message=f"exq: experiment {name}")
        result.sha = sha
    return result


Reproduce = Callable[[Project, Path | None], Awaitable[ReproResult]]


def _repro_runner(options: ExpRunOptions, env: dict[str, str], sink: OutputSink) -> Reproduce:
    async def reproduce(project: Project, state_db: Path | None) -> ReproResult:
        pipeline = load_pipeline(project.root)
        repro_options = ReproOptions(targets=options.targets, jobs=options.jobs, env=env)
        with StageIO(project, state_db=state_db) as io:
            return await repro(pipeline, io, repro_options, sink)

    return reproduce


def _commit(git: Git, baseline: str, name: str) -> str:
    return git.snapshot_workspace(f"exq: experiment {name}", parent=baseline)


async def _run_in_worktree(
    project: Project, git: Git, inputs: str, baseline: str,
    reproduce: Reproduce, result: ExpRunResult,
) -> str | None:
    """Run in a detached worktree at the inputs commit, sharing the project's cache."""
    folder = project.root / WORKTREES_DIR / f"{result.name}-{secrets.token_hex(4)}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    git.add_worktree(folder, inputs)
    try:
        sub = Project(root=folder, cache_dir=project.cache_dir, link_types=project.link_types)
        (folder / ".dvc").mkdir(exist_ok=True)
        state_db = project.root / STATE_RELPATH
        checkout(sub, [], state_db=state_db)
        result.repro = await reproduce(sub, state_db)
        if result.repro.failed:
            return None
        return _commit(Git.open(folder), baseline, result.name)
    finally:
        git.remove_worktree(folder)
        shutil.rmtree(folder, ignore_errors=True)
