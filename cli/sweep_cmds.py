"""``exq sweep status``: how studies go, read from the queue database (no
daemon and no Optuna needed)."""

from __future__ import annotations

import json
import shutil
import sys

import typer

from exq.cli.app import app, handle_errors
from exq.cli.sweep_view import study_text
from exq.daemon.client import lock_holder
from exq.daemon.config import DaemonConfig
from exq.daemon.study_service import stop_study, study_status

sweep_app = typer.Typer(help="Follow studies (exp run --queue --optimize).", no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")


@sweep_app.command("status")
@handle_errors
def sweep_status(
    name: str = typer.Argument(None, help="The study (name or id; default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Trials done, running, pruned and failed, and the best so far, of each study."""
    config = DaemonConfig.from_env()
    alive = lock_holder(config.lock_path) is not None
    studies = study_status(config, name, daemon_alive=alive)
    if as_json:
        typer.echo(json.dumps([s.to_json() for s in studies], indent=2))
        return
    if not studies:
        typer.echo("No studies.")
        return
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    blocks = [study_text(s, width, trials=name is not None) for s in studies]
    typer.echo("\n\n".join(blocks))


@sweep_app.command("stop")
@handle_errors
def sweep_stop(name: str = typer.Argument(..., help="The study (name or id).")) -> None:
    """Ask no more trials of a study and cancel its queued ones; running trials go on."""
    from exq.cli.queue_cmds import daemon_errors

    stopped = daemon_errors(stop_study)(DaemonConfig.from_env(), name)
    study = stopped.study
    typer.echo(
        f"Stopped study '{study.name}' after {study.queued} of {study.budget} trials"
        + (
            f"; cancelled run(s) {', '.join(map(str, stopped.cancelled))}."
            if stopped.cancelled
            else "."
        )
    )
