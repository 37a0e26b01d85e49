"""``exq exp apply|branch|gc|remove|list|push|pull``: thin wrappers over the engine.

The engine (and pygit2) is imported inside each command: ``exq --help`` imports
this module for its registrations only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from exq.cli.completion import complete_experiments
from exq.cli.main import exp_app, handle_errors, silence_stdout
from exq.engine.errors import ExperimentError

if TYPE_CHECKING:
    from exq.daemon.states import RunRecord
    from exq.engine.experiments import manage
    from exq.engine.git import Git

_ALL_COMMITS = typer.Option(
    False, "--all-commits", "-A", "--all", help="Every experiment of the repository."
)
_REV = typer.Option(
    None, "--rev", help="Experiments derived from this commit as baseline (repeatable)."
)
_NO_CACHE = typer.Option(False, "--no-cache", help="Leave out the cached outputs.")
_DVC_REMOTE = typer.Option(
    None, "--remote", "-r", help="The DVC remote for cached outputs (default: core.remote)."
)
_JOBS = typer.Option(
    0, "--jobs", "-j", help="Transfers at once (default: the remote's jobs, else 4 x cores)."
)
_NUM = typer.Option(
    1, "--num", "-n", help="Baselines from the last NUM first-parent commits (<0: all)."
)


def _git() -> Git:
    from exq.engine.git import Git
    from exq.engine.run.project import open_project

    return Git.open(open_project().root)


def _selection(all_commits: bool, rev: list[str] | None, num: int) -> manage.Selection:
    from exq.engine.experiments import manage

    return manage.Selection(all_commits=all_commits, revs=tuple(rev or ()), num=num)


@exp_app.command("apply")
@handle_errors
def exp_apply(
    experiment: str = typer.Argument(
        ..., help="Experiment to apply.", autocompletion=complete_experiments
    ),
    force: bool = typer.Option(
        False, "--force", "-f", help="Overwrite uncommitted changes in the workspace."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print nothing on stdout, no progress bars."
    ),
) -> None:
    """Put an experiment's files and cached outputs into the workspace."""
    from exq.cli.progress import install as install_progress
    from exq.engine.experiments import manage
    from exq.engine.run.project import open_project

    install_progress(quiet)
    if quiet:
        silence_stdout()
    result = manage.apply(open_project(), experiment, force=force)
    typer.echo(
        f"Changes for experiment '{result.name}' have been applied to your current workspace."
    )


@exp_app.command("branch")
@handle_errors
def exp_branch(
    experiment: str = typer.Argument(
        ..., help="Experiment to promote.", autocompletion=complete_experiments
    ),
    branch: str = typer.Argument(None, help="Branch name (default: '<experiment>-branch')."),
) -> None:
    """Create a git branch at an experiment's commit."""
    from exq.engine.experiments import manage

    name, exp = manage.branch(_git(), experiment, branch)
    typer.echo(manage.branch_message(name, exp.name))


@exp_app.command("remove")
@handle_errors
def exp_remove(
    experiments: list[str] = typer.Argument(
        None, help="Experiments to remove.", autocompletion=complete_experiments
    ),
    all_commits: bool = _ALL_COMMITS,
    rev: list[str] = _REV,
    num: int = _NUM,
    queue: bool = typer.Option(False, "--queue", help="Also every queued experiment (DVC's)."),
) -> None:
    """Remove experiments: by name (queued ones too), or every one of some baselines."""
    from exq.engine.experiments import manage

    names = experiments or []
    queued = _queued_runs()
    # A name no experiment has yet may be a queued one's, as in DVC.
    dequeue = [run for run in queued if queue or run.name in names]
    names = [name for name in names if name not in {run.name for run in dequeue}]
    selection = _selection(all_commits, rev, num) if all_commits or rev else None
    removed: list[str] = []
    if names or selection is not None or not (queue or dequeue):
        removed = [repr(e.name) for e in manage.remove(_git(), names, selection)]
    if dequeue:
        from exq.daemon.config import DaemonConfig
        from exq.daemon.service import remove as remove_runs

        # never a run that started meanwhile: remove() leaves running runs alone
        gone = remove_runs(DaemonConfig.from_env(), [str(run.id) for run in dequeue], [])
        removed += [repr(run.name) for run in gone.removed]
    if removed:
        typer.echo(f"Removed experiments: {manage.humanize_join(removed)}")
    else:
        typer.echo("No experiments to remove.")


def _queued_runs() -> list[RunRecord]:
    """The queued runs of this project, oldest first."""
    from exq.daemon.config import DaemonConfig
    from exq.daemon.service import list_runs
    from exq.daemon.states import RunState
    from exq.engine.run.project import open_project

    root = str(open_project().root)
    return list_runs(DaemonConfig.from_env(), [RunState.QUEUED], repo=root)


exp_app.command("rm", hidden=True)(exp_remove)


@exp_app.command("list")
@handle_errors
def exp_list(
    git_remote: str = typer.Argument(None, help="List the experiments of this git remote."),
    all_commits: bool = _ALL_COMMITS,
    rev: list[str] = _REV,
    num: int = _NUM,
    names_only: bool = typer.Option(False, "--names-only", "--name-only", help="Only names."),
    sha_only: bool = typer.Option(False, "--sha-only", "--shas-only", help="Only commit shas."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List experiments under their baseline (default: of HEAD)."""
    from exq.engine.experiments import manage

    if names_only and sha_only:
        raise ExperimentError("--names-only and --sha-only cannot be used together")
    if as_json:
        data = manage.list_json(_git(), _selection(all_commits, rev, num), git_remote)
        typer.echo(json.dumps(data, indent=2))
        return
    mode = "names" if names_only else "shas" if sha_only else "full"
    lines = manage.list_lines(_git(), _selection(all_commits, rev, num), mode, git_remote)
    for line in lines:
        typer.echo(line)


exp_app.command("ls", hidden=True)(exp_list)


@exp_app.command("gc")
@handle_errors
def exp_gc(
    workspace: bool = typer.Option(False, "--workspace", "-w", help="Keep HEAD's experiments."),
    all_branches: bool = typer.Option(
        False, "--all-branches", "-a", help="Also keep those of every branch tip."
    ),
    all_tags: bool = typer.Option(False, "--all-tags", "-T", help="Also keep those of tags."),
    all_commits: bool = typer.Option(
        False, "--all-commits", "-A", help="Also keep those of every commit."
    ),
    queued: bool = typer.Option(
        False, "--queued", help="Keep queued runs of kept baselines (else the queue is cleared)."
    ),
    force: bool = typer.Option(False, "--force", "-f", help="Do not ask for confirmation."),
) -> None:
    """Remove experiments whose baseline is not kept."""
    from exq.engine.experiments import manage

    scope = manage.GcScope(workspace, all_branches, all_tags, all_commits, queued)

    def confirm(_plan: manage.GcPlan) -> bool:
        if force:
            return True
        typer.echo(f"WARNING: {manage.gc_warning(scope)}", err=True)
        return typer.confirm("Are you sure you want to proceed?")

    plan = manage.gc(_git(), scope, confirm)
    if plan.experiments:
        typer.echo(
            f"Removed {len(plan.experiments)} experiments. "
            "To remove unused cache files use 'dvc gc'."
        )
    else:
        typer.echo("No experiments to remove.")
    if plan.queued:
        from exq.daemon.config import DaemonConfig
        from exq.daemon.service import remove_queue_refs

        removed = remove_queue_refs(DaemonConfig.from_env(), _git(), plan.queued)
        typer.echo(f"Removed {removed} queued experiments.")


@exp_app.command("push")
@handle_errors
def exp_push(
    git_remote: str = typer.Argument(..., help="Git remote name, URL or path."),
    experiments: list[str] = typer.Argument(None, help="Experiments to push."),
    all_commits: bool = _ALL_COMMITS,
    rev: list[str] = _REV,
    num: int = _NUM,
    force: bool = typer.Option(False, "--force", "-f", help="Replace diverged remote refs."),
    no_cache: bool = _NO_CACHE,
    dvc_remote: str = _DVC_REMOTE,
    jobs: int = _JOBS,
) -> None:
    """Push experiments to a git remote (default: those of HEAD), and their cached
    outputs to the DVC remote."""
    from exq.engine.experiments import sync

    git = _git()
    if not no_cache:
        _check_dvc_remote(dvc_remote)  # before any ref leaves: its outputs must follow
    result = sync.push(
        git, git_remote, experiments or [], _selection(all_commits, rev, num), force=force
    )
    for line in sync.push_messages(result):
        typer.echo(line)
    if not no_cache:
        _sync_cache("push", git, result.shas, dvc_remote, jobs)


@exp_app.command("pull")
@handle_errors
def exp_pull(
    git_remote: str = typer.Argument(..., help="Git remote name, URL or path."),
    experiments: list[str] = typer.Argument(None, help="Experiments to pull."),
    all_commits: bool = _ALL_COMMITS,
    rev: list[str] = _REV,
    num: int = _NUM,
    force: bool = typer.Option(False, "--force", "-f", help="Replace diverged local refs."),
    no_cache: bool = _NO_CACHE,
    dvc_remote: str = _DVC_REMOTE,
    jobs: int = _JOBS,
) -> None:
    """Pull experiments from a git remote (default: those of HEAD), and their cached
    outputs from the DVC remote into the cache."""
    from exq.engine.experiments import sync

    git = _git()
    if not no_cache:
        _check_dvc_remote(dvc_remote)
    result = sync.pull(
        git, git_remote, experiments or [], _selection(all_commits, rev, num), force=force
    )
    for line in sync.pull_messages(result):
        typer.echo(line)
    if not no_cache:
        _sync_cache("pull", git, result.shas, dvc_remote, jobs)


def _check_dvc_remote(remote: str | None) -> None:
    """Fail now, in one line, if the DVC remote to use is unknown or unreachable."""
    from exq.engine.data.remote import open_storage, reachable
    from exq.engine.data.remote_config import default_name, get_remote
    from exq.engine.run.project import open_project

    dvc_dir = open_project().dvc_dir
    if remote is not None or default_name(dvc_dir) is not None:
        reachable(open_storage(get_remote(dvc_dir, remote)))


def _sync_cache(way: str, git: Git, shas: list[str], remote: str | None, jobs: int) -> None:
    """The experiments' cached outputs to or from the DVC remote, if there is one."""
    from exq.engine.data.remote_config import default_name
    from exq.engine.experiments import sync_cache
    from exq.engine.run.project import open_project

    project = open_project()
    if not shas:
        return
    if remote is None and default_name(project.dvc_dir) is None:
        typer.echo("No DVC remote: cached outputs not exchanged (--no-cache to skip).", err=True)
        return
    move = sync_cache.push if way == "push" else sync_cache.pull
    done = move(project, git, shas, remote, jobs).done  # 0: the remote's jobs, or the default
    verb = "pushed to" if way == "push" else "fetched from"
    typer.echo(f"{done} cached file(s) {verb} the DVC remote.")
