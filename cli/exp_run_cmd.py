"""``exq exp run``: run the pipeline as an experiment."""

from __future__ import annotations

import os

import anyio
import typer

from exq.cli.main import exp_app, handle_errors
from exq.engine.repo import open_project
from exq.engine.runner import stdout_sink


@exp_app.command("run")
@handle_errors
def exp_run(
    targets: list[str] = typer.Argument(None, help="Stages or dvc.yaml files (default: all)."),
    set_param: list[str] = typer.Option(
        [], "--set-param", "-S", help="[file:]key=value edit of a params file (repeatable)."
    ),
    name: str = typer.Option(None, "--name", "-n", help="Name of the experiment."),
    temp: bool = typer.Option(
        False, "--temp", help="Run in a temporary git worktree; leave the workspace as it is."
    ),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an experiment of that name."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Stages at once (default: cores)."),
) -> None:
    """Run the pipeline as an experiment and save it under refs/exps (no branch, no commit)."""
    # Imported here: pygit2 and the params editors are not needed by other commands.
    from exq.engine.experiments import ExpRunOptions, run_experiment

    project = open_project()
    options = ExpRunOptions(
        targets=targets or [], set_params=set_param, name=name, temp=temp, force=force,
        jobs=jobs or os.cpu_count() or 1,
    )
    prefixed = options.jobs > 1
    result = anyio.run(run_experiment, project, options, stdout_sink(prefixed))
    if result.repro is not None and result.repro.failed is not None:
        raise result.repro.failed
    typer.echo("")
    typer.echo(f"Reproduced experiment(s): {result.name}")
    if temp:
        typer.echo("To apply the results of an experiment to your workspace run:\n")
        typer.echo(f"\texq exp apply {result.name}")
    else:
        typer.echo("Experiment results have been applied to your workspace.")
