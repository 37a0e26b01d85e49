"""Data remotes: remote add/list/default/modify/remove, and push, pull, fetch."""

from __future__ import annotations

from pathlib import Path

import typer

from exq.cli.app import handle_errors, remote_app
from exq.engine.data import remote_config as config
from exq.engine.run.project import find_root

_LOCAL_HELP = "Write to .dvc/config.local (not committed: the place for credentials)."


def _dvc_dir() -> Path:
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
