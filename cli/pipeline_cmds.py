"""Pipeline commands: init, repro, status, dag, add, checkout, stage add/list.

The engine is imported inside each command: ``exq --help`` imports this module
for its registrations and must not pay for the pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from exq.cli.completion import complete_stages
from exq.cli.main import app, handle_errors, silence_stdout, stage_app
from exq.cli.messages import format_seconds
from exq.cli.progress import install as install_progress

if TYPE_CHECKING:
    from exq.engine.run.repro import ReproResult


def _default_jobs() -> int:
    return os.cpu_count() or 1


@app.command()
@handle_errors
def init(
    no_scm: bool = typer.Option(False, "--no-scm", help="A project outside git (no experiments)."),
    subdir: bool = typer.Option(
        False, "--subdir", help="A project in a sub-folder of a git repository."
    ),
) -> None:
    """Make the current folder an exq (and DVC) project: create .dvc/."""
    from exq.engine.run.project import check_init_place, init_project

    root = Path.cwd()
    if not no_scm:
        check_init_place(root, subdir=subdir)
    if init_project(root, no_scm=no_scm):
        typer.echo(f"Initialized exq project in {root / '.dvc'}")
    else:
        typer.echo(f"'{root / '.dvc'}' exists already; nothing to do.")


@app.command()
@handle_errors
def repro(
    targets: list[str] = typer.Argument(
        None, help="Stages or dvc.yaml files (default: all).", autocompletion=complete_stages
    ),
    force: bool = typer.Option(False, "--force", "-f", help="Run even unchanged stages."),
    single_item: bool = typer.Option(
        False, "--single-item", "-s", help="Run only the targets, not their upstream."
    ),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Stages at once (default: cores)."),
    dry: bool = typer.Option(False, "--dry", help="Print what would run; change nothing."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only the commands' output: no progress bars or summary."
    ),
) -> None:
    """Run the stages that are out of date, independent ones concurrently."""
    from exq.cli.signals import run_until_stopped
    from exq.engine.run import commands as ops
    from exq.engine.run.project import open_project
    from exq.engine.run.repro import ReproOptions

    install_progress(quiet)
    project = open_project()
    options = ReproOptions(
        targets=targets or [],
        force=force,
        single_item=single_item,
        stage_jobs=jobs or _default_jobs(),
        dry=dry,
        cwd=ops.cwd_in(project),
    )
    result = run_until_stopped(lambda: ops.run_repro(project, options, quiet=quiet))
    if not quiet and not dry:
        for line in repro_summary(result):
            typer.echo(line)
    if result.failed is not None:
        raise result.failed


def repro_summary(result: ReproResult) -> list[str]:
    """The lines ``repro`` ends with: what ran, was skipped or restored, and how
    long each command took; DVC's one line when nothing had to be done."""
    failed = result.failed.stage if result.failed is not None else None
    if not result.durations and not result.restored and failed is None:
        return ["Data and pipelines are up to date."]
    ran = len(result.ran)
    counts = [f"{ran} stage{'' if ran == 1 else 's'} ran"]
    if failed is not None:
        counts.append("1 failed")
    counts += [
        f"{len(result.unchanged)} skipped",
        f"{len(result.restored)} restored from the cache",
    ]
    lines = ["Summary: " + ", ".join(counts) + "."]
    width = max((len(name) for name in result.durations), default=0)
    for name, seconds in result.durations.items():
        mark = "  failed" if name == failed else ""
        lines.append(f"  {name:<{width}}  {format_seconds(seconds):>6}{mark}")
    return lines


@app.command()
@handle_errors
def status(
    targets: list[str] = typer.Argument(
        None, help="Stages or dvc.yaml files (default: all).", autocompletion=complete_stages
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    cloud: bool = typer.Option(False, "--cloud", "-c", help="Compare the cache with a remote."),
    remote: str = typer.Option(None, "--remote", "-r", help="The remote (with -c)."),
) -> None:
    """Show stages and tracked data that changed since they were last run or added."""
    from exq.cli.pipeline_show import show_status

    show_status(targets or [], as_json=as_json, cloud=cloud, remote=remote)


@app.command()
@handle_errors
def dag(
    targets: list[str] = typer.Argument(
        None, help="Show only the graph of these stages.", autocompletion=complete_stages
    ),
    as_json: bool = typer.Option(False, "--json", help="Print nodes and edges as JSON."),
    dot: bool = typer.Option(False, "--dot", help="Print Graphviz DOT."),
    mermaid: bool = typer.Option(False, "--mermaid", help="Print a Mermaid flowchart."),
) -> None:
    """Show the stage graph."""
    from exq.cli.pipeline_show import show_dag

    show_dag(targets or [], as_json=as_json, dot=dot, mermaid=mermaid)


@app.command()
@handle_errors
def add(
    paths: list[str] = typer.Argument(..., help="Files or folders to track."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print nothing on stdout, no progress bars."
    ),
) -> None:
    """Track data: cache it, write PATH.dvc and add PATH to .gitignore."""
    from exq.engine.run import commands as ops
    from exq.engine.run.project import open_project

    install_progress(quiet)
    if quiet:
        silence_stdout()
    project = open_project()
    for path in paths:
        written = ops.add(project, Path(path))
        typer.echo(f"Added '{path}': wrote '{written}'.")


@app.command()
@handle_errors
def checkout(
    targets: list[str] = typer.Argument(
        None,
        help="Stages, dvc.yaml or .dvc files, or paths of outputs and tracked data.",
        autocompletion=complete_stages,
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print nothing on stdout, no progress bars."
    ),
    force: bool = typer.Option(
        False, "--force", "-f", help="Overwrite and delete files the cache does not hold."
    ),
) -> None:
    """Restore stage outputs and tracked data from the cache."""
    from exq.engine.run import commands as ops
    from exq.engine.run.project import open_project

    install_progress(quiet)
    if quiet:
        silence_stdout()
    project = open_project()
    restored = ops.checkout(project, targets or [], keep_unsaved=not force)
    for path in restored:
        typer.echo(f"M\t{path}")
    if not restored:
        typer.echo("Nothing to restore: the workspace matches the cache.")


@stage_app.command("list")
@handle_errors
def stage_list(
    targets: list[str] = typer.Argument(
        None,
        help="Stages or dvc.yaml files (default: the dvc.yaml of the current folder).",
        autocompletion=complete_stages,
    ),
    every: bool = typer.Option(False, "--all", help="Every stage of every dvc.yaml."),
    as_json: bool = typer.Option(False, "--json", help="Print the resolved stages as JSON."),
    name_only: bool = typer.Option(False, "--name-only", "--names-only", help="Only the names."),
) -> None:
    """List the resolved stages, each with what it outputs or depends on."""
    from exq.cli.pipeline_show import show_stage_list

    show_stage_list(targets or [], every=every, as_json=as_json, name_only=name_only)


@stage_app.command("add", context_settings={"allow_interspersed_args": False})
@handle_errors
def stage_add(
    name: str = typer.Option(..., "--name", "-n", help="Stage name."),
    deps: list[str] = typer.Option([], "--deps", "-d", help="A dependency."),
    outs: list[str] = typer.Option([], "--outs", "-o", help="An output, cached."),
    outs_no_cache: list[str] = typer.Option(
        [], "--outs-no-cache", "-O", help="An output, not cached."
    ),
    params: list[str] = typer.Option([], "--params", "-p", help="[file:]key,key params."),
    metrics: list[str] = typer.Option([], "--metrics", help="A metrics file, cached."),
    metrics_no_cache: list[str] = typer.Option(
        [], "--metrics-no-cache", "-M", help="A metrics file, not cached."
    ),
    plots: list[str] = typer.Option([], "--plots", help="A plots file."),
    checkpoints: list[str] = typer.Option(
        [],
        "--checkpoints",
        "--checkpoint",
        "-c",
        help="A checkpoint output: saved at each checkpoint, kept between runs.",
    ),
    live: str = typer.Option(
        None, "--live", help="The live logger's folder (DVC 2's live: section)."
    ),
    live_no_summary: bool = typer.Option(
        False, "--live-no-summary", help="No <live>.json summary."
    ),
    live_no_html: bool = typer.Option(
        False, "--live-no-html", "--live-no-report", help="No <live>.html report."
    ),
    live_no_cache: bool = typer.Option(
        False, "--live-no-cache", help="Keep the live files in git."
    ),
    wdir: str = typer.Option(None, "--wdir", "-w", help="Working folder of the command."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite a stage of that name."),
    command: list[str] = typer.Argument(..., help="The command to run."),
) -> None:
    """Add a stage to dvc.yaml, keeping the file's comments."""
    from exq.engine.run import commands as ops
    from exq.engine.run.project import open_project
    from exq.engine.spec.dvcyaml_edit import LiveOptions

    project = open_project()
    live_options = (
        None
        if live is None
        else LiveOptions(
            live,
            summary=not live_no_summary,
            html=not live_no_html,
            cache=not live_no_cache,
        )
    )
    path = ops.stage_add(
        project,
        name=name,
        cmd=" ".join(command),
        deps=deps,
        outs=outs,
        outs_no_cache=outs_no_cache,
        params=params,
        metrics=metrics,
        metrics_no_cache=metrics_no_cache,
        plots=plots,
        wdir=wdir,
        force=force,
        checkpoints=checkpoints,
        live=live_options,
    )
    typer.echo(f"Added stage '{name}' in '{path}'")
