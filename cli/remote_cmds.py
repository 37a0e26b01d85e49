"""Data remotes: remote add/list/default/modify/remove, and push, pull, fetch.

The transfers (and the pipeline they read) are imported inside push, pull and
fetch: ``exq --help`` imports this module for its registrations only.
"""

from __future__ import annotations

from pathlib import Path

import typer

from exq.cli.app import app, handle_errors, remote_app, silence_stdout
from exq.cli.progress import install as install_progress
from exq.engine.data import remote_config as config

_LOCAL_HELP = "Write to .dvc/config.local (not committed: the place for credentials)."


def _dvc_dir() -> Path:
    from exq.engine.run.project import find_root

    return find_root() / ".dvc"


@remote_app.command("add")
@handle_errors
def remote_add(
    name: str = typer.Argument(..., help="The remote's name."),
    url: str = typer.Argument(..., help="s3://bucket/path, a folder, file://..., gs://, ..."),
    default: bool = typer.Option(False, "--default", "-d", help="Make it the default remote."),
    local: bool = typer.Option(False, "--local", help=_LOCAL_HELP),
    force: bool = typer.Option(False, "--force", "-f", help="Replace a remote of that name."),
) -> None:
    """Add a data remote to .dvc/config."""
    config.add(_dvc_dir(), name, url, default=default, local=local, force=force)
    if default:
        typer.echo(f"Setting '{name}' as a default remote.")


@remote_app.command("list")
@handle_errors
def remote_list() -> None:
    """List the remotes: name, URL, and which one is the default."""
    dvc_dir = _dvc_dir()
    default = config.default_name(dvc_dir)
    for remote in config.remotes(dvc_dir).values():
        mark = "\t(default)" if remote.name == default else ""
        typer.echo(f"{remote.name}\t{remote.url}{mark}")


@remote_app.command("default")
@handle_errors
def remote_default(
    name: str = typer.Argument(None, help="The remote to make the default (none: show it)."),
    unset: bool = typer.Option(False, "--unset", help="Have no default remote."),
    local: bool = typer.Option(False, "--local", help=_LOCAL_HELP),
) -> None:
    """Show or set the default remote (core.remote)."""
    dvc_dir = _dvc_dir()
    if unset:
        config.set_default(dvc_dir, None, local=local)
    elif name:
        config.set_default(dvc_dir, name, local=local)
    else:
        current = config.default_name(dvc_dir)
        if current is None:
            typer.echo("No default remote set.", err=True)
            raise typer.Exit(1)
        typer.echo(current)


@remote_app.command("modify")
@handle_errors
def remote_modify(
    name: str = typer.Argument(..., help="The remote."),
    key: str = typer.Argument(..., help="DVC's option name: url, endpointurl, region, ..."),
    value: str = typer.Argument(None, help="The value (omit with --unset)."),
    unset: bool = typer.Option(False, "--unset", "-u", help="Remove the option."),
    local: bool = typer.Option(False, "--local", help=_LOCAL_HELP),
) -> None:
    """Set one option of a remote (credentials with --local)."""
    if value is None and not unset:
        raise typer.BadParameter("give a VALUE, or --unset")
    config.modify(_dvc_dir(), name, key, None if unset else value, local=local)


@remote_app.command("remove")
@handle_errors
def remote_remove(name: str = typer.Argument(..., help="The remote.")) -> None:
    """Remove a remote from .dvc/config and .dvc/config.local."""
    config.remove(_dvc_dir(), name)


# The options push, fetch and pull share (typer reads these defaults, never changes them).
_TARGETS = typer.Argument(None, help="Stages, .dvc files or paths of outputs (default: all).")
_REMOTE = typer.Option(None, "--remote", "-r", help="The remote (default: core.remote).")
_JOBS = typer.Option(
    0, "--jobs", "-j", help="Transfers at once (default: the remote's jobs, else 4 x cores)."
)
_QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing on stdout, no progress bars.")

# What each way says of an output whose objects are missing, and when done.
_MISSING = {
    "push": "in neither the cache nor the remote",
    "fetch": "on neither the remote nor in the cache",
    "pull": "on neither the remote nor in the cache",
}
_DONE = {
    "push": "{done} file(s) pushed, {present} already on the remote.",
    "fetch": "{done} file(s) fetched.",
    "pull": "{done} file(s) fetched, {restored} output(s) restored.",
}


def _transfer(
    way: str,
    targets: list[str] | None,
    remote: str | None,
    jobs: int,
    quiet: bool,
    force: bool = False,
) -> None:
    """Run one of push, fetch, pull and report it; exit 1 if some output's objects were
    found nowhere."""
    from exq.engine.run import transfer
    from exq.engine.run.project import open_project

    install_progress(quiet)
    if quiet:
        silence_stdout()
    args = (open_project(), targets or [], remote, jobs)  # 0: the remote's jobs, or the default
    restored: list[str] = []
    if way == "pull":
        result, restored = transfer.pull(*args, force=force)
    else:
        result = transfer.push(*args) if way == "push" else transfer.fetch(*args)
    for rel in result.missing:
        typer.echo(f"WARNING: '{rel}': some of its objects are {_MISSING[way]}.", err=True)
    for rel in restored:
        typer.echo(f"A\t{rel}")
    typer.echo(_DONE[way].format(done=result.done, present=result.present, restored=len(restored)))
    if result.missing:
        raise typer.Exit(1)


@app.command()
@handle_errors
def push(
    targets: list[str] = _TARGETS,
    remote: str = _REMOTE,
    jobs: int = _JOBS,
    quiet: bool = _QUIET,
) -> None:
    """Send the cached outputs' objects the remote lacks."""
    _transfer("push", targets, remote, jobs, quiet)


@app.command()
@handle_errors
def fetch(
    targets: list[str] = _TARGETS,
    remote: str = _REMOTE,
    jobs: int = _JOBS,
    quiet: bool = _QUIET,
) -> None:
    """Download into the cache the objects it lacks (the workspace is not changed)."""
    _transfer("fetch", targets, remote, jobs, quiet)


@app.command()
@handle_errors
def pull(
    targets: list[str] = _TARGETS,
    remote: str = _REMOTE,
    jobs: int = _JOBS,
    quiet: bool = _QUIET,
    force: bool = typer.Option(
        False, "--force", "-f", help="Overwrite and delete files the cache does not hold."
    ),
) -> None:
    """Fetch, then put the outputs into the workspace."""
    _transfer("pull", targets, remote, jobs, quiet, force)
